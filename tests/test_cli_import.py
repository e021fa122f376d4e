"""``secrets-ledger import`` from each source, with and without ``--dry-run``: real
processes, both backends. Nested JSON becomes paths by the documented rule, a dotenv file
is read as python-dotenv reads it, a dry run shows what would change and never a value,
and the audit trail names the source."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from dotenv import dotenv_values
from moto.server import ThreadedMotoServer

from secrets_ledger.core.ports import AuditFilter
from secrets_ledger.core.settings import Settings
from secrets_ledger.runtime import LedgerRuntime
from tests.support import Blocking, blocking
from tests.test_cli import CLI, cli_env, existing_ledger, run, write_json
from tests.test_concurrency import request

__all__ = ["existing_ledger"]  # the ledger every command here works on

DOTENV = '''# a comment, then every form python-dotenv reads
PLAIN=plain-value
export EXPORTED=exported-value
SINGLE='single $NOT_EXPANDED # not a comment'
DOUBLE="double \\"quoted\\"\\tand escaped"
MULTI="first line
second line"
EMPTY=
SPACED = spaced value  # a comment after it
UNICODE="ключ-é"
'''


@pytest.fixture
def ledger_of(settings: Settings) -> Iterator[Blocking]:
    """The ledger the commands wrote, opened in this process after them."""
    runtimes: list[LedgerRuntime] = []

    def opened() -> Blocking:
        runtimes.append(LedgerRuntime(settings, follow=True))
        return blocking(runtimes[-1])

    yield opened  # type: ignore[misc]
    for runtime in runtimes:
        runtime.close()


def values_of(ledger: Blocking, tenant: str, keys: list[str]) -> dict[str, Any]:
    return {key: ledger.get_secret(tenant, key, request()).value for key in keys}


def test_nested_objects_become_paths_by_default(settings: Settings, tmp_path: Path,
                                                ledger_of: Any) -> None:
    blob = write_json(tmp_path / "vapi.json", {"vapi": {"publicApiKey": "pk", "privateApiKey":
                                                        "sk", "limits": {"rps": 5}},
                                               "flags": [1, 2], "none": {}})
    done = run(settings, "import", "--tenant", "legacy", "--create-tenant", str(blob))
    assert done.returncode == 0, done.stderr
    ledger = ledger_of()
    assert values_of(ledger, "legacy", ["vapi/publicApiKey", "vapi/privateApiKey",
                                        "vapi/limits/rps", "flags", "none"]) == {
        "vapi/publicApiKey": "pk", "vapi/privateApiKey": "sk", "vapi/limits/rps": 5,
        "flags": [1, 2], "none": {}}
    assert len(ledger.list_keys("legacy").items) == 5


def test_nested_as_value_keeps_each_object_one_keys_json_value(
        settings: Settings, tmp_path: Path, ledger_of: Any) -> None:
    blob = write_json(tmp_path / "vapi.json", {"vapi": {"publicApiKey": "pk"}})
    done = run(settings, "import", "--tenant", "legacy", "--create-tenant", "--nested",
               "as-value", str(blob))
    assert done.returncode == 0, done.stderr
    assert values_of(ledger_of(), "legacy", ["vapi"]) == {"vapi": {"publicApiKey": "pk"}}


def test_two_entries_making_one_key_are_refused_before_anything_is_written(
        settings: Settings, tmp_path: Path) -> None:
    blob = write_json(tmp_path / "clash.json", {"a": {"b": 1}, "a/b": 2})
    done = run(settings, "import", "--tenant", "legacy", "--create-tenant", str(blob))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"secrets-ledger: {blob}: two entries of the document make the key 'a/b'"]
    assert "legacy" not in run(settings, "tenant", "list").stdout


def test_a_dotenv_file_imports_what_python_dotenv_reads_from_it(
        settings: Settings, tmp_path: Path, ledger_of: Any) -> None:
    path = tmp_path / ".env"
    path.write_text(DOTENV)
    expected = dotenv_values(path, interpolate=False)
    assert len(expected) == 8 and expected["MULTI"] == "first line\nsecond line"
    done = run(settings, "import", "--tenant", "acme", "--create-tenant", "--from", "dotenv",
               str(path))
    assert done.returncode == 0, done.stderr
    assert "imported 8 changed keys of 8" in done.stdout
    assert values_of(ledger_of(), "acme", list(expected)) == expected


@pytest.mark.parametrize(("content", "line"), [
    ("GOOD=1\n=no key\n", 2), ("GOOD=1\nNO_VALUE\n", 2), ("A=1\nA=2\n", 2)])
def test_a_dotenv_line_that_is_not_key_value_is_refused_with_its_line(
        settings: Settings, tmp_path: Path, content: str, line: int) -> None:
    path = tmp_path / ".env"
    path.write_text(content)
    done = run(settings, "import", "--tenant", "acme", "--create-tenant", "--from", "dotenv",
               str(path))
    assert done.returncode == 2
    [message] = done.stderr.strip().splitlines()
    assert message.startswith(f"secrets-ledger: {path}:{line}: ")
    assert "acme" not in run(settings, "tenant", "list").stdout


def test_a_dry_run_lists_what_would_change_never_a_value_and_writes_nothing(
        settings: Settings, tmp_path: Path) -> None:
    run(settings, "import", "--tenant", "acme", "--create-tenant", str(write_json(
        tmp_path / "before.json", {"same": "value-same", "edited": "value-old",
                                   "only-here": "value-only-here"})))
    source = write_json(tmp_path / "after.json", {"same": "value-same", "edited": "value-new",
                                                  "new": "value-added"})
    before = run(settings, "verify", "--tenant", "acme").stdout
    dry = run(settings, "import", "--tenant", "acme", "--dry-run", str(source))
    assert dry.returncode == 1, dry.stderr
    lines = dry.stdout.splitlines()
    assert any("edited" in line and "changed" in line and "1" in line for line in lines)
    assert any("new" in line and "added" in line for line in lines)
    assert any("only-here" in line and "not in the source" in line for line in lines)
    assert not any(line.split("│")[1:2] == [" same "] for line in lines)  # only a count
    assert "added 1, changed 1, unchanged 1, not in the source 1: they differ" in dry.stdout
    assert "value-" not in dry.stdout + dry.stderr
    assert run(settings, "verify", "--tenant", "acme").stdout == before  # nothing written


def test_a_dry_run_exits_0_once_the_tenant_agrees_with_the_source(
        settings: Settings, tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text("A=1\nB='two words'\n")
    args = ["import", "--tenant", "acme", "--create-tenant", "--from", "dotenv"]
    assert run(settings, *args, "--dry-run", str(path)).returncode == 1  # not yet created
    assert "legacy" not in run(settings, "tenant", "list").stdout
    assert run(settings, *args, str(path)).returncode == 0
    agreed = run(settings, *args, "--dry-run", str(path))
    assert agreed.returncode == 0, agreed.stdout + agreed.stderr
    assert "the tenant agrees with the source" in agreed.stdout


def test_the_audit_trail_names_the_import_and_its_source(
        settings: Settings, tmp_path: Path, ledger_of: Any) -> None:
    path = tmp_path / "service.env"
    path.write_text("TOKEN=abc\n")
    assert run(settings, "import", "--tenant", "acme", "--create-tenant", "--from", "dotenv",
               str(path)).returncode == 0
    rows = ledger_of().audit("acme", AuditFilter(key="TOKEN")).items
    assert [(row.action, row.actor) for row in rows] == [
        ("write", "cli:import:dotenv:service.env")]


@pytest.fixture
def moto_endpoint() -> Iterator[str]:
    """A real Secrets Manager protocol server: moto's own, over HTTP."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    httpx.post(f"{endpoint}/moto-api/reset").raise_for_status()  # its state is per process
    yield endpoint
    server.stop()


AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "eu-west-1"}


def run_with_aws(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=cli_env(settings) | AWS_ENV, capture_output=True,
                          text=True, timeout=120, check=False)


def test_aws_secrets_manager_round_trips_and_the_dry_run_then_says_equal(
        settings: Settings, moto_endpoint: str, ledger_of: Any) -> None:
    client = boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name="eu-west-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    stored = {"prod/db/password": "p@ss w0rd", "prod/api": '{"key": "v", "n": 1}'}
    for name, value in stored.items():
        client.create_secret(Name=name, SecretString=value)
    client.create_secret(Name="staging/db/password", SecretString="elsewhere")
    source = ["--from", "aws-sm", "--endpoint-url", moto_endpoint, "--prefix", "prod/"]
    done = run_with_aws(settings, "import", "--tenant", "acme", "--create-tenant", *source)
    assert done.returncode == 0, done.stderr
    assert "imported 2 changed keys of 2" in done.stdout
    ledger = ledger_of()
    assert values_of(ledger, "acme", list(stored)) == stored
    assert [item.key for item in ledger.list_keys("acme").items] == sorted(stored)
    assert {row.actor for row in ledger.audit("acme", AuditFilter(action="write")).items} == {
        f"cli:import:aws-sm:{moto_endpoint}"}
    agreed = run_with_aws(settings, "import", "--tenant", "acme", "--dry-run", *source)
    assert agreed.returncode == 0, agreed.stdout + agreed.stderr
    assert "the tenant agrees with the source" in agreed.stdout
    client.put_secret_value(SecretId="prod/api", SecretString="rotated")
    differs = run_with_aws(settings, "import", "--tenant", "acme", "--dry-run", *source)
    assert differs.returncode == 1 and "rotated" not in differs.stdout


def test_an_unreachable_aws_endpoint_is_one_line_and_exit_2(settings: Settings) -> None:
    done = run_with_aws(settings, "import", "--tenant", "acme", "--create-tenant", "--from",
                        "aws-sm", "--endpoint-url", "http://user:hunter2@127.0.0.1:9")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "AWS Secrets Manager" in done.stderr and "hunter2" not in done.stderr
    assert "acme" not in run(settings, "tenant", "list").stdout


@pytest.mark.parametrize("env", [{"VAULT_TOKEN": "slt_x"}, {}])
def test_an_unreachable_vault_or_no_token_is_one_line_and_exit_2(
        settings: Settings, env: dict[str, str]) -> None:
    done = subprocess.run([*CLI, "import", "--tenant", "acme", "--create-tenant", "--from",
                           "vault", "--addr", "http://user:hunter2@127.0.0.1:9"],
                          env={k: v for k, v in cli_env(settings).items()
                               if not k.startswith("VAULT_")} | env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Vault" in done.stderr or "VAULT_TOKEN" in done.stderr
    assert "hunter2" not in done.stderr
    assert "acme" not in run(settings, "tenant", "list").stdout


def test_a_source_that_reads_no_file_refuses_one_and_a_file_source_needs_one(
        settings: Settings, tmp_path: Path) -> None:
    blob = str(write_json(tmp_path / "x.json", {"a": 1}))
    for args, said in ((["--from", "aws-sm", blob], "reads no file"),
                       (["--from", "dotenv"], "reads a FILE")):
        done = run(settings, "import", "--tenant", "acme", *args)
        assert done.returncode == 2 and said in done.stderr


def test_aws_all_versions_arrive_in_order_with_their_labels_and_once(
        settings: Settings, moto_endpoint: str, ledger_of: Any) -> None:
    client = boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name="eu-west-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    client.create_secret(Name="prod/db", SecretString="one")
    for value in ("two", "three"):
        client.put_secret_value(SecretId="prod/db", SecretString=value)
    source = ["--from", "aws-sm", "--endpoint-url", moto_endpoint, "--all-versions",
              "--nested", "as-value"]
    done = run_with_aws(settings, "import", "--tenant", "acme", "--create-tenant", *source)
    assert done.returncode == 0, done.stderr
    assert "imported 3 versions of 1 keys" in done.stdout
    ledger = ledger_of()
    history = [ledger.get_secret("acme", "prod/db", request(), version=n) for n in (1, 2, 3)]
    assert [v.value for v in history] == ["one", "two", "three"]
    assert [v.metadata["aws_stages"] for v in history] == ["", "AWSPREVIOUS", "AWSCURRENT"]
    agreed = run_with_aws(settings, "import", "--tenant", "acme", "--dry-run", *source)
    assert agreed.returncode == 0 and "the tenant agrees" in agreed.stdout, agreed.stdout
    client.put_secret_value(SecretId="prod/db", SecretString="four")
    differs = run_with_aws(settings, "import", "--tenant", "acme", "--dry-run", *source)
    assert differs.returncode == 1 and "four" not in differs.stdout
    again = run_with_aws(settings, "import", "--tenant", "acme", *source)
    assert "imported 1 versions of 1 keys" in again.stdout, again.stdout
    assert ledger.get_secret("acme", "prod/db", request()).value == "four"


def test_all_versions_is_refused_for_file_sources_and_flattened_paths(
        settings: Settings, tmp_path: Path) -> None:
    blob = str(write_json(tmp_path / "x.json", {"a": 1}))
    for args in (["--from", "json", blob], ["--from", "vault", "--nested", "paths"]):
        done = run(settings, "import", "--tenant", "acme", "--all-versions", *args)
        assert done.returncode == 2 and "--all-versions" in done.stderr, done.stderr
