"""``secrets-ledger export``: real processes, both backends. What it writes imports back
to the same keys and values (and a dry run then says so), each value it prints is an
audited read, ``--at`` exports the past, and a file it writes is new and 0600."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from secrets_ledger.core.ports import AuditFilter
from secrets_ledger.core.settings import Settings
from secrets_ledger.domain.times import format_time, utc_now
from tests.test_cli import existing_ledger, run, write_json
from tests.test_cli_import import ledger_of, values_of
from tests.test_concurrency import request

__all__ = ["existing_ledger", "ledger_of"]  # fixtures these tests use

TRICKY = {"plain": "v", "quotes": "it's \"quoted\"", "backslash": "a\\b\\'c",
          "lines": "one\ntwo", "dollar": "${HOME} $PATH", "unicode": "ключ-é", "empty": ""}


def filled(settings: Settings, tmp_path: Path, values: dict[str, Any]) -> None:
    done = run(settings, "import", "--tenant", "acme", "--create-tenant", "--nested",
               "as-value", str(write_json(tmp_path / "fill.json", values)))
    assert done.returncode == 0, done.stderr


def test_a_json_export_imports_back_to_the_same_keys_and_values(
        settings: Settings, tmp_path: Path) -> None:
    filled(settings, tmp_path, {**TRICKY, "nested": {"a": [1, {"b": None}]}, "n": 7})
    exported = run(settings, "export", "--tenant", "acme")
    assert exported.returncode == 0, exported.stderr
    path = tmp_path / "export.json"
    path.write_text(exported.stdout)
    assert json.loads(exported.stdout)["nested"] == {"a": [1, {"b": None}]}
    again = run(settings, "import", "--tenant", "copy", "--create-tenant", "--nested",
                "as-value", str(path))
    assert again.returncode == 0, again.stderr
    for tenant in ("acme", "copy"):
        agreed = run(settings, "import", "--tenant", tenant, "--nested", "as-value",
                     "--dry-run", str(path))
        assert agreed.returncode == 0, agreed.stdout


def test_a_dotenv_export_reads_back_as_written_through_python_dotenv(
        settings: Settings, tmp_path: Path, ledger_of: Any) -> None:
    filled(settings, tmp_path, {**TRICKY, "number": 5, "object": {"k": "v"}})
    path = tmp_path / "out.env"
    done = run(settings, "export", "--tenant", "acme", "--format", "dotenv", "--output",
               str(path))
    assert done.returncode == 0, done.stderr
    assert dotenv_values(path, interpolate=False) == {**TRICKY, "number": "5",
                                                      "object": '{"k": "v"}'}
    imported = run(settings, "import", "--tenant", "copy", "--create-tenant", "--from",
                   "dotenv", str(path))
    assert imported.returncode == 0, imported.stderr
    assert values_of(ledger_of(), "copy", list(TRICKY)) == TRICKY


def test_every_exported_value_is_an_audited_read(settings: Settings, tmp_path: Path,
                                                 ledger_of: Any) -> None:
    filled(settings, tmp_path, {"a": 1, "b": 2, "c": 3})
    assert run(settings, "export", "--tenant", "acme").returncode == 0
    reads = ledger_of().audit("acme", AuditFilter(action="read")).items
    assert sorted((row.key, row.version, row.actor) for row in reads) == [
        ("a", 1, "cli"), ("b", 1, "cli"), ("c", 1, "cli")]


def test_an_export_at_a_time_holds_the_values_of_that_time(
        settings: Settings, tmp_path: Path) -> None:
    filled(settings, tmp_path, {"k": "first", "gone": "soon"})
    time.sleep(0.01)
    then = format_time(utc_now())
    time.sleep(0.01)
    done = run(settings, "import", "--tenant", "acme", str(write_json(
        tmp_path / "2.json", {"k": "second", "new": "later"})))
    assert done.returncode == 0, done.stderr
    assert json.loads(run(settings, "export", "--tenant", "acme", "--at", then).stdout) == {
        "k": "first", "gone": "soon"}
    assert json.loads(run(settings, "export", "--tenant", "acme").stdout) == {
        "k": "second", "gone": "soon", "new": "later"}


def test_an_export_file_is_created_0600_and_never_overwritten(
        settings: Settings, tmp_path: Path) -> None:
    filled(settings, tmp_path, {"k": "v"})
    path = tmp_path / "export.json"
    assert run(settings, "export", "--tenant", "acme", "--output", str(path)).returncode == 0
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("kept")
    again = run(settings, "export", "--tenant", "acme", "--output", str(path))
    assert again.returncode == 2 and len(again.stderr.strip().splitlines()) == 1
    assert path.read_text() == "kept"


def test_an_export_of_a_missing_tenant_is_one_line_and_exit_2(settings: Settings) -> None:
    done = run(settings, "export", "--tenant", "nobody")
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1 and done.stdout == ""


def test_a_key_whose_version_was_destroyed_is_left_out_and_named(
        settings: Settings, tmp_path: Path, ledger_of: Any) -> None:
    filled(settings, tmp_path, {"kept": "v", "burnt": "w"})
    ledger_of().destroy_versions("acme", "burnt", [1], request())
    done = run(settings, "export", "--tenant", "acme")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"kept": "v"}
    assert "left out 1 keys whose version was destroyed: burnt" in done.stderr
