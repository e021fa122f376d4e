"""Split views caught (issue 16): a ledger whose operator rewrites a tenant's history (the
store rolled back to a copy, then different writes) is caught by a witness, which will
not cosign the forked log, and by a client that remembers the last checkpoint it saw,
which no consistency proof can join to the fork. Real processes: ``secrets-ledger
serve`` configured with a ``secrets-ledger witness``."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from secrets_ledger.adapters.log_keys import parse_signer_key
from secrets_ledger.verifier import (
    Checkpoint,
    Trusted,
    VerificationError,
    parse_verifier_key,
    verifier_key,
    verify_checkpoint,
    verify_extends,
)
from tests.e2e.helpers import CLI, Server, create_tenant, free_port, put_value

PREFIX = "secrets-ledger/tenants/"


@pytest.fixture
def witness(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """(URL, its verifier key, the ledger's signer key it trusts)."""
    signer = subprocess.run([str(CLI), "log-key", "new"], capture_output=True, text=True,
                            check=True).stdout.strip()
    name, key = parse_signer_key(signer)
    port = free_port()
    proc = subprocess.Popen(
        [str(CLI), "witness", "--data-dir", str(tmp_path / "witness"), "--port", str(port),
         "--log-key", verifier_key(name, key.public_key()), "--origin-prefix", PREFIX],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("witness key: "), line
        url = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.post(f"{url}/add-checkpoint", content=b"")
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield url, line.split(": ", 1)[1].strip(), signer
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def cosigned_checkpoint(server: Server, client: httpx.Client, tenant: str, trusted: Trusted
                        ) -> Checkpoint:
    """The tenant's latest checkpoint once it holds every write and the witness cosigned it."""
    deadline = time.monotonic() + 5.0
    while True:
        body = client.get(f"/v1/tenants/{tenant}/log/checkpoint").json()
        head = client.get(f"/v1/tenants/{tenant}/log/leaves",
                          params={"start": body["tree_size"], "end": body["tree_size"] + 1})
        try:
            checkpoint = verify_checkpoint(body["checkpoint"], trusted, PREFIX + tenant)
            if not head.json()["leaves"]:
                return checkpoint
        except VerificationError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.1)


def test_a_rewritten_history_is_caught_by_the_witness_and_by_a_client_that_remembers(
        tmp_path: Path, witness: tuple[str, str, str]) -> None:
    url, witness_key, signer = witness
    name, key = parse_signer_key(signer)
    trusted = Trusted([parse_verifier_key(verifier_key(name, key.public_key()))],
                      [parse_verifier_key(witness_key)], quorum=1)
    data = tmp_path / "data"
    data.mkdir()
    server = Server("sqlite", data, tmp_path / "serve.log", extra_env={
        "LEDGER_LOG_KEY": signer, "LEDGER_WITNESSES": json.dumps([f"{url} {witness_key}"])})
    server.start()
    try:
        with server.admin() as admin:
            tenant = create_tenant(admin)
            put_value(admin, tenant, "api-key", "v1")
            first = cosigned_checkpoint(server, admin, tenant, trusted)
        server.stop()
        shutil.copytree(data, tmp_path / "copy")  # what the operator will roll back to
        server.start()
        with server.admin() as admin:
            for value in ("v2", "v3"):
                put_value(admin, tenant, "api-key", value)
            remembered = cosigned_checkpoint(server, admin, tenant, trusted)
            proof = admin.get(f"/v1/tenants/{tenant}/log/consistency",
                              params={"old": first.size, "size": remembered.size}).json()
            verify_extends(first, remembered, proof["proof"])  # the honest log holds
        server.stop()
        shutil.rmtree(data)
        shutil.copytree(tmp_path / "copy", data)  # history rewritten from here on
        server.start()
        with server.admin() as admin:
            for value in ("v2-evil", "v3-evil", "v4-evil"):
                put_value(admin, tenant, "api-key", value)
            time.sleep(1.5)  # rounds enough to have tried the witness
            forked = admin.get(f"/v1/tenants/{tenant}/log/checkpoint").json()
            assert forked["tree_size"] > remembered.size
            with pytest.raises(VerificationError, match="trusted witnesses cosigned"):
                verify_checkpoint(forked["checkpoint"], trusted, PREFIX + tenant)
            alone = Trusted(trusted.log_keys)  # signed by the log key: it is the operator
            fork = verify_checkpoint(forked["checkpoint"], alone, PREFIX + tenant)
            proof = admin.get(f"/v1/tenants/{tenant}/log/consistency",
                              params={"old": remembered.size, "size": fork.size}).json()
            with pytest.raises(VerificationError):
                verify_extends(remembered, fork, proof["proof"])
    finally:
        server.stop()
    assert "did not cosign" in server.log_text() or "refused a checkpoint" in server.log_text()
