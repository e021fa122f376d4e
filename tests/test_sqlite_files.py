"""The embedded store's files (SQLite only: PostgreSQL's files are the server's): owner
only, and WAL files kept within their size limit."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from secrets_ledger.adapters.sqlite.files import WalLimit
from secrets_ledger.adapters.sqlite.storage import EVENTS_FILE, VIEWS_FILE
from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.runtime import LedgerRuntime
from tests.conftest import make_settings
from tests.support import blocking


def modes(data_dir: Path) -> dict[str, int]:
    return {path.name: stat.S_IMODE(path.stat().st_mode) for path in data_dir.iterdir()}


def write_some(runtime: LedgerRuntime, ctx: RequestContext, count: int = 20) -> None:
    ledger = blocking(runtime)
    ledger.open_tenant("acme", ctx)
    for number in range(count):
        ledger.put_secret("acme", f"k{number}", "v" * 2000, None, None, ctx)


def test_every_file_of_a_new_store_is_readable_by_its_owner_only(
        tmp_path: Path, ctx: RequestContext) -> None:
    settings = make_settings("sqlite", tmp_path / "data")
    with LedgerRuntime(settings) as runtime:
        write_some(runtime, ctx)
        found = modes(settings.data_dir)
    assert {f"{VIEWS_FILE}-wal", f"{EVENTS_FILE}-wal", "master.key"} <= set(found)
    assert found == dict.fromkeys(found, 0o600)


def test_a_store_made_with_readable_files_is_tightened_when_opened(
        tmp_path: Path, ctx: RequestContext) -> None:
    settings = make_settings("sqlite", tmp_path / "data")
    with LedgerRuntime(settings) as runtime:
        write_some(runtime, ctx)
    for path in settings.data_dir.glob("*.sqlite*"):
        os.chmod(path, 0o644)
    with LedgerRuntime(settings, follow=False):
        assert set(modes(settings.data_dir).values()) == {0o600}


def test_a_wal_over_its_limit_is_truncated(tmp_path: Path, ctx: RequestContext) -> None:
    settings = make_settings("sqlite", tmp_path / "data")
    with LedgerRuntime(settings) as runtime:
        write_some(runtime, ctx)
        wal = settings.data_dir / f"{EVENTS_FILE}-wal"
        assert wal.stat().st_size > 4096
        WalLimit(settings.data_dir / EVENTS_FILE, limit=4096)()
        assert wal.stat().st_size == 0
        assert blocking(runtime).get_secret("acme", "k3", ctx).value == "v" * 2000


def test_a_server_keeps_both_wals_within_the_limit(tmp_path: Path) -> None:
    settings = make_settings("sqlite", tmp_path / "data")
    with LedgerRuntime(settings, follow=False) as runtime:
        limited = {task.database.name for task in runtime.storage.maintenance
                   if isinstance(task, WalLimit)}
    assert limited == {EVENTS_FILE, VIEWS_FILE}
