"""The command line as scripts use it: real processes, both backends."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from secrets_ledger.adapters.storage import open_storage
from secrets_ledger.core.settings import Settings
from tests.conftest import make_settings

CLI = [sys.executable, "-m", "secrets_ledger.api.cli"]


def cli_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env["LEDGER_DATA_DIR"] = str(settings.data_dir)
    if settings.database_url is not None:
        env["LEDGER_DATABASE_URL"] = settings.database_url.get_secret_value()
        env["LEDGER_DATABASE_SCHEMA"] = settings.database_schema
    return env


def run(settings: Settings, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=cli_env(settings), capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(autouse=True)
def existing_ledger(request: pytest.FixtureRequest, settings: Settings) -> None:
    """The commands work on an existing ledger (they refuse to make one by accident);
    a test marked ``fresh_store`` starts from nothing."""
    if request.node.get_closest_marker("fresh_store") is None:
        open_storage(settings).close()


def write_json(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data))
    return path


@pytest.mark.fresh_store
def test_two_processes_migrating_at_once_apply_each_migration_exactly_once(
        settings: Settings) -> None:
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: run(settings, "migrate"), range(2)))
    assert [r.returncode for r in results] == [0, 0], [r.stderr for r in results]
    applied = [r.stdout for r in results if "nothing" not in r.stdout]
    assert len(applied) <= 1
    assert "nothing (up to date)" in run(settings, "migrate").stdout


def test_import_writes_all_keys_in_one_event_and_twice_writes_nothing(
        settings: Settings, tmp_path: Path) -> None:
    blob = write_json(tmp_path / "blob.json", {"a": "1", "b": {"nested": True}, "c/d": [1, 2]})
    first = run(settings, "import", "--tenant", "legacy", "--create-tenant", str(blob))
    assert first.returncode == 0, first.stderr
    assert "imported 3 changed keys of 3" in first.stdout
    again = run(settings, "import", "--tenant", "legacy", "--create-tenant", str(blob))
    assert again.returncode == 0, again.stderr
    assert "imported 0 changed keys of 3" in again.stdout
    verify = run(settings, "verify", "--tenant", "legacy")
    assert verify.returncode == 0
    assert "2 events" in verify.stdout  # opened + one write event


def test_import_of_a_changed_blob_writes_only_the_changed_keys(
        settings: Settings, tmp_path: Path) -> None:
    run(settings, "import", "--tenant", "legacy", "--create-tenant",
        str(write_json(tmp_path / "1.json", {"a": 1, "b": 2})))
    second = run(settings, "import", "--tenant", "legacy", "--create-tenant",
                 str(write_json(tmp_path / "2.json", {"a": 1, "b": 3})))
    assert "imported 1 changed keys of 2" in second.stdout


@pytest.mark.parametrize("content", ["not json", "[1, 2]", '{"bad//key": 1}',
                                     '{"ok": 1, "../x": 2}'])
def test_an_invalid_import_file_writes_nothing_and_exits_2(
        settings: Settings, tmp_path: Path, content: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    result = run(settings, "import", "--tenant", "legacy", "--create-tenant", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "legacy" not in run(settings, "tenant", "list").stdout


def test_an_import_into_a_missing_tenant_exits_2_and_writes_nothing(
        settings: Settings, tmp_path: Path) -> None:
    result = run(settings, "import", "--tenant", "absent",
                 str(write_json(tmp_path / "blob.json", {"a": 1})))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "secrets-ledger: no such tenant: create it first (or pass --create-tenant)"]
    assert "absent" not in run(settings, "tenant", "list").stdout


def test_an_import_of_a_key_the_rest_api_cannot_address_writes_nothing(
        settings: Settings, tmp_path: Path) -> None:
    result = run(settings, "import", "--tenant", "legacy", "--create-tenant",
                 str(write_json(tmp_path / "blob.json", {"fine": 1, "a/b/versions": 2})))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "legacy" not in run(settings, "tenant", "list").stdout


def test_token_create_prints_only_the_token(settings: Settings) -> None:
    result = run(settings, "token", "create", "--role", "admin")
    assert result.returncode == 0
    assert result.stdout.count("\n") == 1
    assert result.stdout.startswith("slt_")


def test_token_create_for_a_missing_tenant_exits_2(settings: Settings) -> None:
    result = run(settings, "token", "create", "--tenant", "nope", "--role", "writer")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_replay_prints_the_checksum_of_the_live_views(settings: Settings,
                                                      tmp_path: Path) -> None:
    run(settings, "import", "--tenant", "acme", "--create-tenant",
        str(write_json(tmp_path / "b.json", {f"k{i}": i for i in range(50)})))
    live = run(settings, "checksum").stdout.strip()
    replayed = run(settings, "replay")
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.strip() == live
    assert live.startswith("checksum: ") and len(live.split()[-1]) == 64
    for view in ("current", "audit"):
        one = run(settings, "replay", "--view", view)
        assert one.stdout.strip() == run(settings, "checksum", "--view", view).stdout.strip()


def test_replay_with_worker_processes_prints_the_live_checksum(settings: Settings,
                                                                 tmp_path: Path) -> None:
    for tenant in ("acme", "globex", "initech"):
        run(settings, "import", "--tenant", tenant, "--create-tenant",
            str(write_json(tmp_path / f"{tenant}.json", {f"k{i}": i for i in range(30)})))
    live = run(settings, "checksum").stdout.strip()
    replayed = run(settings, "replay", "--workers", "2")  # on SQLite: in one process
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.strip() == live


@pytest.mark.parametrize("args", [("--view", "nonsense"), ("--workers", "0"),
                                  ("--workers", "two"), ("--workers", "17")])
def test_bad_arguments_exit_2_without_a_traceback(settings: Settings,
                                                  args: tuple[str, str]) -> None:
    result = run(settings, "replay", *args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_unreachable_storage_exits_2_with_one_line(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url="postgresql://nobody@127.0.0.1:1/none")
    result = run(settings, "tenant", "list", timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_rotate_master_keeps_every_value_readable_and_the_chain_head(
        settings: Settings, tmp_path: Path) -> None:
    run(settings, "import", "--tenant", "acme", "--create-tenant",
        str(write_json(tmp_path / "b.json", {"a": "alpha"})))
    before = run(settings, "verify", "--tenant", "acme").stdout
    key_file = settings.data_dir / "master.key"
    old_key = key_file.read_text()
    rotated = run(settings, "keys", "rotate-master")
    assert rotated.returncode == 0, rotated.stderr
    assert key_file.read_text() != old_key
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert run(settings, "verify", "--tenant", "acme").stdout == before
    # Importing the same value again writes nothing: the old value still opens.
    again = run(settings, "import", "--tenant", "acme", "--create-tenant",
                str(write_json(tmp_path / "b.json", {"a": "alpha"})))
    assert "imported 0 changed keys" in again.stdout


def test_verify_exits_1_naming_the_tenant_and_position_of_an_edited_row(
        settings: Settings, tmp_path: Path) -> None:
    from tests.test_tamper_evidence import change_actor, edit_json, tamper

    for name in ("intact", "edited"):
        run(settings, "import", "--tenant", name, "--create-tenant",
            str(write_json(tmp_path / f"{name}.json", {"a": 1})))
        run(settings, "import", "--tenant", name, "--create-tenant",
            str(write_json(tmp_path / f"{name}.json", {"a": 2})))
    assert run(settings, "verify").returncode == 0
    tamper(settings, "edited", 2, edit_json(change_actor))
    for args in (("verify",), ("verify", "--tenant", "edited")):
        result = run(settings, *args)
        assert result.returncode == 1
        assert "BROKEN" in result.stdout
        assert "first bad position 2" in result.stdout
        assert "BROKEN  edited" in result.stdout
    assert run(settings, "verify", "--tenant", "intact").returncode == 0


@pytest.mark.fresh_store
def test_a_command_outside_any_ledger_refuses_and_creates_nothing(tmp_path: Path) -> None:
    """(SQLite: a PostgreSQL schema is made by whichever process connects first.)"""
    elsewhere = make_settings("sqlite", tmp_path / "not-a-ledger")
    done = run(elsewhere, "import", "--tenant", "acme", "--create-tenant",
               str(write_json(tmp_path / "blob.json", {"a": "1"})))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "no ledger in" in done.stderr
    assert not elsewhere.data_dir.exists()


def test_an_import_nested_past_any_limit_is_one_line(settings: Settings, tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text('{"k": ' + "[" * 100_000 + "]" * 100_000 + "}")
    done = run(settings, "import", "--tenant", "acme", "--create-tenant", str(deep))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "nests deeper" in done.stderr
