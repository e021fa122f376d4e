"""The transparency log over real HTTP (issue 16), checked the way an auditor checks it:
with the independent verifier and nothing but the published log key."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from secrets_ledger.verifier import (
    Trusted,
    VerificationError,
    leaf_hash,
    leaf_of,
    parse_checkpoint,
    parse_verifier_key,
    recompute_root,
    verify_checkpoint,
    verify_extends,
    verify_inclusion,
    verify_read,
)
from secrets_ledger.verifier.checks import hashes
from tests.e2e.helpers import Server, assert_problem, create_tenant, issue_token, put_value


def trusted(server: Server) -> tuple[Trusted, str]:
    published = httpx.get(f"{server.base_url}/v1/log-key").json()
    return (Trusted([parse_verifier_key(key) for key in published["log_keys"]]),
            published["origin_prefix"])


def log_path(tenant: str, what: str) -> str:
    return f"/v1/tenants/{tenant}/log/{what}"


def read_with_proof(client: httpx.Client, tenant: str, key: str, **params: Any
                    ) -> dict[str, Any]:
    response = client.get(f"/v1/tenants/{tenant}/secrets/{key}",
                          params={"proof": "true", **params})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_the_log_key_is_published_without_a_token(server: Server) -> None:
    keys, prefix = trusted(server)
    assert len(keys.log_keys) == 1
    assert prefix.endswith("/tenants/")


def test_a_read_with_its_proof_verifies_with_only_the_log_key(
        server: Server, tenant: str, writer: httpx.Client, reader: httpx.Client) -> None:
    put_value(writer, tenant, "db/password", {"user": "app", "password": "s3cr\u00e9t"})
    put_value(writer, tenant, "db/password", "second")
    keys, prefix = trusted(server)
    answer = read_with_proof(reader, tenant, "db/password", version=1)
    checkpoint = verify_read(tenant, answer, keys, prefix)
    assert checkpoint.origin == prefix + tenant
    assert answer["proof"]["event_version"] == answer["proof"]["record"]["version"] > 1
    assert "ciphertext" in answer["proof"]["record"]["fields"]["writes"][0]


def test_a_proof_whose_value_was_swapped_fails(server: Server, tenant: str,
                                               writer: httpx.Client) -> None:
    put_value(writer, tenant, "k", "the real value")
    keys, prefix = trusted(server)
    answer = read_with_proof(writer, tenant, "k")
    forged = {**answer, "value": "another value",
              "proof": {**answer["proof"], "value_json": json.dumps("another value")}}
    with pytest.raises(VerificationError, match="not the one the log recorded"):
        verify_read(tenant, forged, keys, prefix)
    moved = {**answer, "proof": {**answer["proof"], "leaf_index": 0}}
    with pytest.raises(VerificationError):
        verify_read(tenant, moved, keys, prefix)


def test_checkpoints_grow_consistently_and_are_signed_within_a_second(
        server: Server, tenant: str, writer: httpx.Client, auditor: httpx.Client) -> None:
    keys, prefix = trusted(server)
    first = verify_checkpoint(auditor.get(log_path(tenant, "checkpoint")).json()["checkpoint"],
                              keys, prefix + tenant)
    for n in range(5):
        put_value(writer, tenant, f"k{n}", n)
    deadline = time.monotonic() + 2.0
    while True:  # the server signs new leaves within its checkpoint interval (0.5 s)
        latest = verify_checkpoint(auditor.get(log_path(tenant, "checkpoint")).json()[
            "checkpoint"], keys, prefix + tenant)
        if latest.size >= first.size + 5 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert latest.size >= first.size + 5
    proof = auditor.get(log_path(tenant, "consistency"),
                        params={"old": first.size, "size": latest.size}).json()["proof"]
    verify_extends(first, latest, proof)


def test_every_leaf_recomputes_from_its_record_to_the_checkpoint_root(
        server: Server, tenant: str, writer: httpx.Client, reader: httpx.Client,
        auditor: httpx.Client) -> None:
    for n in range(3):
        put_value(writer, tenant, "k", n)
        reader.get(f"/v1/tenants/{tenant}/secrets/k")
    writer.delete(f"/v1/tenants/{tenant}/secrets/k")
    keys, prefix = trusted(server)
    checkpoint = read_checkpoint(auditor, tenant, keys, prefix)
    leaves = auditor.get(log_path(tenant, "leaves"),
                         params={"start": 0, "end": checkpoint.size}).json()["leaves"]
    assert len(leaves) == checkpoint.size
    assert {leaf["record"]["kind"] for leaf in leaves} == {"event", "reads"}
    assert "value" not in json.dumps(leaves).replace('"values', "")  # no value, ever
    assert recompute_root([leaf["record"] for leaf in leaves],
                          [leaf["leaf_hash"] for leaf in leaves]) == checkpoint.root
    for index in (0, checkpoint.size - 1):
        proof = auditor.get(log_path(tenant, "inclusion"),
                            params={"index": index, "size": checkpoint.size}).json()["proof"]
        verify_inclusion(index, checkpoint.size, leaf_hash(leaf_of(leaves[index]["record"])),
                         hashes(proof), checkpoint.root)


def read_checkpoint(client: httpx.Client, tenant: str, keys: Trusted, prefix: str) -> Any:
    """The latest checkpoint once it holds every leaf so far (signed within a second)."""
    deadline = time.monotonic() + 3.0
    while True:
        body = client.get(log_path(tenant, "checkpoint")).json()
        checkpoint = verify_checkpoint(body["checkpoint"], keys, prefix + tenant)
        leaves = client.get(log_path(tenant, "leaves"),
                            params={"start": checkpoint.size, "end": checkpoint.size + 1})
        if (leaves.status_code == 200 and not leaves.json()["leaves"]) or (
                time.monotonic() > deadline):
            return checkpoint
        time.sleep(0.05)


def test_readers_may_have_proofs_but_only_auditors_the_records(
        server: Server, tenant: str, writer: httpx.Client, reader: httpx.Client,
        auditor: httpx.Client) -> None:
    put_value(writer, tenant, "k", 1)
    assert reader.get(log_path(tenant, "checkpoint")).status_code == 200
    assert_problem(reader.get(log_path(tenant, "leaves"), params={"start": 0, "end": 1}), 403)
    assert auditor.get(log_path(tenant, "leaves"), params={"start": 0, "end": 1}
                       ).status_code == 200


def test_nobody_of_another_tenant_learns_anything_of_a_log(
        server: Server, admin: httpx.Client, tenant: str, writer: httpx.Client) -> None:
    put_value(writer, tenant, "k", 1)
    other = create_tenant(admin)
    with server.client(issue_token(admin, other, "auditor")["token"]) as stranger:
        for what, params in (("checkpoint", {}), ("inclusion", {"index": 0, "size": 1}),
                             ("consistency", {"old": 1, "size": 1}),
                             ("leaves", {"start": 0, "end": 1})):
            missing = stranger.get(log_path("no-such-tenant", what), params=params)
            theirs = stranger.get(log_path(tenant, what), params=params)
            assert_problem(theirs, 404, "tenant_not_found")
            assert missing.status_code == 404
            assert theirs.json()["detail"] == missing.json()["detail"]


def test_bad_proof_requests_are_clear_400s(tenant: str, writer: httpx.Client,
                                          auditor: httpx.Client) -> None:
    put_value(writer, tenant, "k", 1)
    for what, params in (("inclusion", {"index": 5, "size": 2}),
                         ("inclusion", {"index": 0, "size": 10**9}),
                         ("consistency", {"old": 3, "size": 2}),
                         ("leaves", {"start": 0, "end": 100000}),
                         ("leaves", {"start": 2, "end": 1})):
        response = auditor.get(log_path(tenant, what), params=params)
        assert response.status_code in (400, 422), (what, params, response.text)


def test_the_verifier_cli_checks_a_read_and_remembers_its_checkpoint(
        server: Server, tenant: str, writer: httpx.Client, tmp_path: Path) -> None:
    put_value(writer, tenant, "k", "v1")
    _, prefix = trusted(server)
    answer = tmp_path / "answer.json"
    answer.write_text(json.dumps(read_with_proof(writer, tenant, "k")))
    log_key = httpx.get(f"{server.base_url}/v1/log-key").json()["log_keys"][0]
    state = tmp_path / "state.json"
    cli = [sys.executable, "-m", "secrets_ledger.verifier", "--log-key", log_key,
           "--origin-prefix", prefix, "--state", str(state)]
    done = subprocess.run([*cli, "read", str(answer), "--tenant", tenant],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok: k version 1 is leaf")
    remembered = parse_checkpoint(json.loads(state.read_text())[prefix + tenant])
    put_value(writer, tenant, "k", "v2")
    answer.write_text(json.dumps(read_with_proof(writer, tenant, "k")))
    refused = subprocess.run([*cli, "read", str(answer), "--tenant", tenant],
                             capture_output=True, text=True, check=False)
    assert refused.returncode == 1
    assert "give --consistency" in refused.stderr
    size = json.loads(answer.read_text())["proof"]["tree_size"]
    proof = tmp_path / "consistency.json"
    proof.write_text(writer.get(log_path(tenant, "consistency"),
                                params={"old": remembered.size, "size": size}).text)
    accepted = subprocess.run([*cli, "read", str(answer), "--tenant", tenant,
                               "--consistency", str(proof)],
                              capture_output=True, text=True, check=False)
    assert accepted.returncode == 0, accepted.stderr
    assert "extends the remembered checkpoint" in accepted.stdout


def test_the_verifier_cli_recomputes_the_root_and_catches_an_edited_record(
        server: Server, tenant: str, writer: httpx.Client, auditor: httpx.Client,
        tmp_path: Path) -> None:
    for n in range(3):
        put_value(writer, tenant, "k", n)
    keys, prefix = trusted(server)
    checkpoint = read_checkpoint(auditor, tenant, keys, prefix)
    note = tmp_path / "checkpoint.json"
    note.write_text(auditor.get(log_path(tenant, "checkpoint")).text)
    leaves = auditor.get(log_path(tenant, "leaves"),
                         params={"start": 0, "end": checkpoint.size}).json()
    pages = tmp_path / "leaves.json"
    pages.write_text(json.dumps(leaves))
    log_key = httpx.get(f"{server.base_url}/v1/log-key").json()["log_keys"][0]
    cli = [sys.executable, "-m", "secrets_ledger.verifier", "--log-key", log_key]
    done = subprocess.run([*cli, "root", str(pages), "--checkpoint", str(note)],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"ok: {checkpoint.size} leaves recomputed")
    signed = subprocess.run([*cli, "--origin-prefix", prefix, "checkpoint", str(note),
                             "--tenant", tenant], capture_output=True, text=True, check=False)
    assert signed.returncode == 0, signed.stderr
    record = leaves["leaves"][-1]["record"]
    record["fields"]["writes"][0]["key_version"] += 1  # an edited record
    pages.write_text(json.dumps(leaves))
    caught = subprocess.run([*cli, "root", str(pages), "--checkpoint", str(note)],
                            capture_output=True, text=True, check=False)
    assert caught.returncode == 1
    assert "is not what its record recomputes to" in caught.stderr
