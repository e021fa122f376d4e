"""What the projections need from storage: the event store as a sequence of positions,
and the view tables. The adapters implement them once per backend (bulk writes, table
copies and row dumps differ there); the views' own SQL is the SQL both backends share.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

Column = tuple[str, str]
"""A column's name and its PostgreSQL type (bulk writes on PostgreSQL send typed arrays)."""


class EventSource(Protocol):
    """The event store as projections see it: positions and decoded domain events."""

    def max_position(self) -> int: ...

    def read(self, after: int, limit: int) -> Sequence[tuple[int, Any]]:
        """The next (position, event) pairs after ``after``, in order."""


class ViewWriter(Protocol):
    """One transaction on the view tables."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...

    def append(self, table: str, columns: Sequence[Column],
               rows: Sequence[Sequence[Any]]) -> None:
        """Inserts rows that cannot conflict (their keys are new positions)."""

    def merge(self, table: str, columns: Sequence[Column], rows: Sequence[Sequence[Any]],
              on_conflict: str) -> None:
        """``INSERT ... ON CONFLICT <on_conflict>``; the rows' keys must be distinct."""

    def update(self, table: str, *, assign: Sequence[Column], keys: Sequence[Column],
               rows: Sequence[Sequence[Any]], fixed: str = "", where: str = "") -> None:
        """Updates the row of each key: each row is the ``assign`` values, then the
        ``keys``. ``fixed`` adds constant assignments, ``where`` a condition on the
        table's own (unqualified) columns; the keys must be distinct."""

    def lock_position(self, view_name: str) -> int:
        """The view's tracking position, locked until this transaction ends."""

    def set_position(self, view_name: str, position: int) -> None: ...

    def rows_as_copy_text(self, table: str, order_by: str
                          ) -> Iterator[bytes | bytearray | memoryview]:
        """Every row in ``order_by`` order, in PostgreSQL's ``COPY`` text form."""


@dataclass
class TableClone:
    """A view table's fresh copy for a rebuild, and the keys and indexes it gets before it
    is swapped in (under the live table's names)."""

    table: str
    clone: str
    # (the name an index or key takes at the swap, its name meanwhile, "index" or "key")
    names: list[tuple[str, str, str]] = field(default_factory=list)
    builds: list[str] = field(default_factory=list)  # CREATE INDEX, one per index
    attaches: list[str] = field(default_factory=list)  # keys made of their built indexes

    def build_indexes(self, tx: ViewWriter) -> None:
        for statement in self.builds:
            tx.execute(statement)
        self.attach_keys(tx)

    def attach_keys(self, tx: ViewWriter) -> None:
        for statement in self.attaches:
            tx.execute(statement)
        self.builds.clear()
        self.attaches.clear()

    def swap(self, tx: ViewWriter) -> None:
        tx.execute(f"DROP TABLE {self.table}")
        tx.execute(f"ALTER TABLE {self.clone} RENAME TO {self.table}")
        for name, temporary, kind in self.names:
            if kind == "key":
                tx.execute(f"ALTER TABLE {self.table} RENAME CONSTRAINT {temporary} TO {name}")
            else:
                tx.execute(f"ALTER INDEX {temporary} RENAME TO {name}")


class ViewStore(Protocol):
    transient: tuple[type[BaseException], ...]
    """What a transaction may fail with and then succeed when run again (PostgreSQL: a
    deadlock, e.g. a replay's swap with a live server's readers)."""

    def transaction(self) -> AbstractContextManager[ViewWriter]: ...

    def bulk_transaction(self) -> AbstractContextManager[ViewWriter]:
        """A transaction of a rebuild's load: nothing depends on it until the swap, whose
        commit is durable, so it need not wait for its own flush."""

    def positions(self) -> dict[str, int]:
        """Every view's tracking position."""

    def clone_table(self, tx: ViewWriter, table: str, clone: str) -> TableClone:
        """Creates ``clone`` empty, like ``table``; its keys and indexes are built later."""

    def build_index(self, statement: str, share_cores: bool) -> None:
        """Runs one ``CREATE INDEX`` in a transaction of its own; ``share_cores`` when as
        many builds as cores run side by side (each then keeps to one core)."""

    def table_digests(self, tables: Sequence[tuple[str, str]]) -> list[bytes]:
        """``checksum.rows_digest`` of each (table, order by), all in one snapshot."""
