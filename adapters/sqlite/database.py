"""The project's own tables on SQLite: ``ledger.sqlite`` beside the event store's file."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from secrets_ledger.adapters.sql.database import Cursor, Row


class SQLiteCursor:
    """A DB-API cursor that takes the shared SQL's ``%s`` placeholders."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self.raw = cursor

    @property
    def rowcount(self) -> int:
        return self.raw.rowcount

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.raw.execute(sql.replace("%s", "?"), tuple(params))

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any:
        return self.raw.executemany(sql.replace("%s", "?"), [tuple(p) for p in params])

    def fetchone(self) -> Row | None:
        row: Row | None = self.raw.fetchone()
        return row

    def fetchall(self) -> list[Row]:
        return list(self.raw.fetchall())

    def fetchmany(self, size: int) -> list[Row]:
        return list(self.raw.fetchmany(size))


def use_wal(conn: sqlite3.Connection) -> None:
    """Switches the file to WAL once; two processes opening a new file may collide here,
    and the loser of that race is told "locked" at once (no busy handler): retry."""
    for attempt in range(50):
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if attempt == 49:
                raise
            time.sleep(0.05)


WAL_SIZE_LIMIT = 64 * 1024 * 1024
"""Bytes a WAL file keeps after a checkpoint resets it (it grows past this under load)."""


def checkpoint_truncating(conn: sqlite3.Connection, attempts: int = 600) -> None:
    """Copies every WAL frame into the database file and truncates the WAL to zero bytes.
    SQLite waits for readers (the busy timeout) and reports "busy" if one still holds an
    old snapshot: try again until it completes."""
    for _ in range(attempts):
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if not busy:
            return
        time.sleep(0.05)
    raise sqlite3.OperationalError("the WAL could not be checkpointed: readers held it")


class ThreadConnections:
    """One connection per thread (a sqlite3 connection is not for sharing), opened by
    ``connect`` on first use in each thread; all closed together."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def get(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


class SQLiteDatabase:
    """One connection per thread to a WAL-mode file; write transactions are IMMEDIATE."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._connections = ThreadConnections(self._open)

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None,
                               check_same_thread=False)
        use_wal(conn)
        # FULL: a data key must be as durable as the event that needs it.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=30000")
        # A deleted key's bytes are zeroed in its page, not left in free space.
        conn.execute("PRAGMA secure_delete=ON")
        conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
        return conn

    def _connection(self) -> sqlite3.Connection:
        return self._connections.get()

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        conn = self._connection()
        cursor = conn.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            yield SQLiteCursor(cursor)
        except BaseException:
            conn.rollback()
            raise
        else:
            conn.commit()
        finally:
            cursor.close()

    @contextmanager
    def read(self) -> Iterator[Cursor]:
        cursor = self._connection().cursor()
        try:
            yield SQLiteCursor(cursor)
        finally:
            cursor.close()

    def lock_for_migrations(self, cur: Cursor) -> None:
        """Nothing to add: ``BEGIN IMMEDIATE`` already makes a second writer wait."""

    def erase_deleted(self, tables: Sequence[str]) -> None:
        # secure_delete zeroed the rows in their pages; the WAL still holds the frames
        # written before. Checkpoint every frame into the file, then truncate the WAL.
        checkpoint_truncating(self._connection())

    def row_lock(self, *, exclusive: bool) -> str:
        return ""  # ``BEGIN IMMEDIATE``: one writer at a time already

    def close(self) -> None:
        self._connections.close()
