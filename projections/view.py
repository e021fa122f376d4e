"""What every view is: a set of tables, and how a batch of events becomes their rows.

A view turns a batch of domain events into rows, inside a transaction the projector opens
and in which it also advances the view's tracking position. Table names take a suffix so
that replay can build the same view into fresh tables and swap them in.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from secrets_ledger.projections.ports import ViewWriter


class View(ABC):
    name: ClassVar[str]
    tables: ClassVar[tuple[str, ...]]
    # Columns that order each table's rows for the checksum (its primary key).
    order_by: ClassVar[Mapping[str, str]]
    # Tables a rebuild only appends to: replay may build their indexes after loading.
    append_only: ClassVar[frozenset[str]] = frozenset()
    # Tables a running server prunes by age: not in the checksum, which compares a
    # replay (every row again) with the live views.
    pruned: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, suffix: str = "") -> None:
        self.suffix = suffix
        self.t = {table: table + suffix for table in self.tables}

    def apply_batch(self, tx: ViewWriter, batch: Sequence[tuple[int, Any]]) -> None:
        """Writes the rows a batch of (position, event) contributes, in as few statements
        as it can; the result is the same however the events are cut into batches."""
        self.write(tx, self.rows_of(batch))

    @abstractmethod
    def rows_of(self, batch: Sequence[tuple[int, Any]]) -> Any:
        """The rows a batch contributes, in memory (no I/O: replay builds the next
        batch's rows while the last ones are written)."""

    @abstractmethod
    def write(self, tx: ViewWriter, rows: Any) -> None:
        """Writes ``rows_of``'s rows, in as few statements as it can."""

