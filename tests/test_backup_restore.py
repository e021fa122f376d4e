"""Backup and restore, as the README tells an operator to do them, on both backends:
SQLite through ``secrets-ledger backup`` (a copy of a running store, taken while a writer
writes), PostgreSQL through ``pg_dump``/``pg_restore`` into a fresh database. Restored
with the keys kept apart, the copy verifies and reads every value back."""

from __future__ import annotations

import shutil
import stat
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from secrets_ledger.core.settings import Settings
from secrets_ledger.runtime import LedgerRuntime
from tests.conftest import PG_URL
from tests.support import blocking
from tests.test_cli import existing_ledger, run
from tests.test_concurrency import request

__all__ = ["existing_ledger"]  # the ledger every command here works on
KEY_FILES = ("master.key", "log.key")


def written_while(settings: Settings, during: callable) -> dict[str, str]:  # type: ignore[valid-type]
    """Writes key after key in this process until ``during`` returns; returns what was
    acknowledged before ``during`` began, and keeps writing while it runs."""
    runtime = LedgerRuntime(settings, follow=False)
    ledger = blocking(runtime)
    ledger.open_tenant("acme", request())
    before = {f"k{n}": f"value-{n}" for n in range(20)}
    for key, value in before.items():
        ledger.put_secret("acme", key, value, None, None, request())
    done = threading.Event()

    def write() -> None:
        n = 20
        while not done.is_set():
            ledger.put_secret("acme", f"k{n}", f"value-{n}", None, None, request())
            n += 1

    writer = threading.Thread(target=write)
    writer.start()
    try:
        during()
    finally:
        done.set()
        writer.join()
        runtime.close()
    return before


def read_back(settings: Settings, expected: dict[str, str]) -> None:
    runtime = LedgerRuntime(settings, follow=True)
    try:
        ledger = blocking(runtime)
        keys = [item.key for item in ledger.list_keys("acme", limit=1000).items]
        assert set(expected) <= set(keys)
        for key in keys:  # every value in the copy opens, and is the one written
            assert ledger.get_secret("acme", key, request()).value == f"value-{key[1:]}"
    finally:
        runtime.close()
    verified = run(settings, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_sqlite_backup_of_a_running_store_restores_whole(settings: Settings,
                                                           tmp_path: Path) -> None:
    copy = tmp_path / "backup"
    results = []
    expected = written_while(settings, lambda: results.append(run(settings, "backup",
                                                                  str(copy))))
    assert results[0].returncode == 0, results[0].stderr
    assert sorted(path.name for path in copy.iterdir()) == ["events.sqlite", "ledger.sqlite"]
    assert stat.S_IMODE(copy.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in copy.iterdir())
    restored = Settings(data_dir=tmp_path / "restored")
    shutil.copytree(copy, restored.data_dir)
    for name in KEY_FILES:  # kept apart from the copy, restored beside it
        shutil.copy2(settings.data_dir / name, restored.data_dir / name)
    read_back(restored, expected)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_a_backup_never_goes_into_an_existing_directory(settings: Settings,
                                                        tmp_path: Path) -> None:
    (tmp_path / "there").mkdir()
    done = run(settings, "backup", str(tmp_path / "there"))
    assert done.returncode == 2 and "exists" in done.stderr
    assert list((tmp_path / "there").iterdir()) == []


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_pg_dump_of_a_running_store_restores_whole_into_a_fresh_database(
        settings: Settings, tmp_path: Path) -> None:
    assert run(settings, "backup", str(tmp_path / "b")).returncode == 2  # pg_dump's job
    dump = tmp_path / "ledger.dump"
    results = []
    expected = written_while(settings, lambda: results.append(subprocess.run(
        ["pg_dump", "--format=custom", f"--schema={settings.database_schema}",
         f"--file={dump}", PG_URL], capture_output=True, text=True, check=False)))
    assert results[0].returncode == 0, results[0].stderr
    fresh = f"restored_{uuid.uuid4().hex[:10]}"
    url = PG_URL.rsplit("/", 1)[0] + "/" + fresh
    subprocess.run(["createdb", "--maintenance-db", PG_URL, fresh], check=True)
    try:
        subprocess.run(["pg_restore", "--no-owner", f"--dbname={url}", str(dump)], check=True)
        restored = Settings(data_dir=tmp_path / "restored", database_url=url,
                            database_schema=settings.database_schema)
        restored.data_dir.mkdir()
        for name in KEY_FILES:
            shutil.copy2(settings.data_dir / name, restored.data_dir / name)
        read_back(restored, expected)
    finally:
        subprocess.run(["dropdb", "--maintenance-db", PG_URL, "--force", fresh], check=True)
