"""The project's own tables on either backend, behind one small interface.

SQL is written once with ``%s`` placeholders (the SQLite backend rewrites them to ``?``).
Everything the ledger stores outside the event store (views, tracking, key store,
tokens) goes through a ``Database``; the event store itself is the ``eventsourcing``
recorder.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

Row = tuple[Any, ...]


class Cursor(Protocol):
    """The part of a DB-API cursor the ledger uses, with ``%s`` placeholders."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any: ...

    def fetchone(self) -> Row | None: ...

    def fetchall(self) -> list[Row]: ...

    def fetchmany(self, size: int) -> list[Row]: ...


class Database(Protocol):
    def transaction(self) -> AbstractContextManager[Cursor]:
        """A cursor in a transaction; commits on success, rolls back on error."""

    def read(self) -> AbstractContextManager[Cursor]:
        """A cursor for one read statement: no transaction around it (no BEGIN/COMMIT
        round trips, and on SQLite no write lock)."""

    def lock_for_migrations(self, cur: Cursor) -> None:
        """Makes a second process that migrates at the same moment wait for this one."""

    def erase_deleted(self, tables: Sequence[str]) -> None:
        """Makes the rows deleted from ``tables`` so far unreadable from the database's
        files by any path (not only by SQL): no stale page, WAL frame or dead tuple."""

    def row_lock(self, *, exclusive: bool) -> str:
        """The clause that locks the rows a SELECT reads until the transaction ends
        (``FOR SHARE``/``FOR UPDATE``; nothing where a write transaction already excludes
        every other writer)."""

    def close(self) -> None: ...


def fetch_one(db: Database, sql: str, params: Sequence[Any] = ()) -> Row | None:
    """One row of a one-statement read."""
    with db.read() as cur:
        cur.execute(sql, params)
        return cur.fetchone()


def fetch_all(db: Database, sql: str, params: Sequence[Any] = ()) -> list[Row]:
    with db.read() as cur:
        cur.execute(sql, params)
        return cur.fetchall()
