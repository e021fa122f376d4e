"""The view tables as the projections write them (``projections.ports.ViewStore``): what
both backends share. Bulk writes, row dumps and table copies are each backend's own
(``sqlite/viewstore.py``, ``postgres/viewstore.py``)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from secrets_ledger.adapters.sql.database import Cursor, Database, fetch_all
from secrets_ledger.projections.checksum import rows_digest
from secrets_ledger.projections.ports import Column, ViewWriter


def names(columns: Sequence[Column]) -> str:
    return ", ".join(name for name, _ in columns)


class SqlViewWriter:
    """A transaction on the views; ``position_lock`` is how the backend locks a row."""

    position_lock = ""

    def __init__(self, cur: Cursor) -> None:
        self.cur = cur

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.cur.execute(sql, params)

    def lock_position(self, view_name: str) -> int:
        self.cur.execute("SELECT position FROM projection_tracking WHERE view_name = %s"
                         f"{self.position_lock}", (view_name,))
        row = self.cur.fetchone()
        return int(row[0]) if row else 0

    def set_position(self, view_name: str, position: int) -> None:
        self.cur.execute("UPDATE projection_tracking SET position = %s WHERE view_name = %s",
                         (position, view_name))


class SqlViewStore(ABC):
    transient: tuple[type[BaseException], ...] = ()

    def __init__(self, db: Database) -> None:
        self.db = db

    @abstractmethod
    def writer(self, cur: Cursor) -> ViewWriter:
        """A transaction's writer, with the backend's bulk writes and row dumps."""

    @contextmanager
    def transaction(self) -> Iterator[ViewWriter]:
        with self.db.transaction() as cur:
            yield self.writer(cur)

    def bulk_transaction(self) -> Any:
        return self.transaction()

    def positions(self) -> dict[str, int]:
        rows = fetch_all(self.db, "SELECT view_name, position FROM projection_tracking")
        return {str(name): int(position) for name, position in rows}

    def build_index(self, statement: str, share_cores: bool) -> None:
        with self.db.transaction() as cur:
            cur.execute(statement)

    def table_digests(self, tables: Sequence[tuple[str, str]]) -> list[bytes]:
        with self.transaction() as tx:  # one snapshot of every table
            return [rows_digest(tx.rows_as_copy_text(table, order_by))
                    for table, order_by in tables]
