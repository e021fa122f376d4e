"""Every transparency log checked in replay's own pass: the replay feeds each record it
loads to a ``LogFold`` (``domain.log_fold``), and once the load is over the store digests
its logs' rows (``LogRows.chunk_digests``) while the replay builds its indexes and swaps
its tables, so that the comparison at the end waits for little.

Only when the digests differ is the store read again record by record (``History``), to
name the first bad position.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from secrets_ledger.core.log_ports import LogRows
from secrets_ledger.domain.log_fold import LogFold


class ReplayedLogs:
    """A ``projections.replay.BatchCheck`` over every tenant's log."""

    def __init__(self, rows: LogRows, fold: LogFold) -> None:
        self.rows = rows
        self.fold = fold
        self._stored: Future[dict[str, list[bytes]]] | None = None

    def add_batch(self, batch: Sequence[tuple[int, Any]]) -> None:
        self.fold.add_batch(batch)

    def part_of(self, part: int, parts: int) -> LogFold:
        return self.fold.part_of(part, parts)

    def merge(self, other: LogFold) -> None:
        self.fold.merge(other)

    def finish(self) -> None:
        """The load is over: the stored side's digests start (in their own thread)."""
        self.fold.finish()
        if self._stored is None:
            pool = ThreadPoolExecutor(1, thread_name_prefix="log-digests")
            self._stored = pool.submit(self.rows.chunk_digests, self.fold.snapshot.sizes,
                                       self.fold.chunk)
            pool.shutdown(wait=False)  # the thread ends with its one query

    def differences(self) -> list[str]:
        """What differs between the logs the records recompute to and the stored ones
        (nothing: every log, every checkpoint, as the records say)."""
        self.finish()
        assert self._stored is not None
        found = self.fold.differences(self._stored.result())
        if self.fold.failure is not None:
            found.insert(0, self.fold.failure[1])
        return found
