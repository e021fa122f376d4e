"""The embedded store's files: readable by their owner only, and WAL files that do not
stay at the size a burst of load grew them to."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from secrets_ledger.adapters.sqlite.database import WAL_SIZE_LIMIT

COMPANIONS = ("", "-wal", "-shm", "-journal")


def make_private(database: Path) -> None:
    """Creates the database file with mode 0600 before SQLite does (which would use 0644),
    so that its WAL and shared-memory files, which SQLite gives the database file's
    mode, are 0600 too; a store made before this gets its modes tightened."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for suffix in COMPANIONS:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(f"{database}{suffix}", 0o600)


class WalLimit:
    """Truncates a database's WAL once it is over the limit (a server calls it every
    second). SQLite only resets a WAL when a checkpoint completes, and never shrinks the
    file on its own where the connections are not ours (the event store's)."""

    def __init__(self, database: Path, limit: int = WAL_SIZE_LIMIT) -> None:
        self.database = database
        self.wal = Path(f"{database}-wal")
        self.limit = limit

    def __call__(self) -> None:
        try:
            if self.wal.stat().st_size <= self.limit:
                return
        except FileNotFoundError:
            return
        conn = sqlite3.connect(self.database, timeout=5.0, isolation_level=None)
        try:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # busy: the next call retries
        finally:
            conn.close()
