"""Rebuilds views from position 0 into fresh tables and swaps them in atomically.

Readers keep reading the live tables while the rebuild runs. The swap transaction locks
the views' tracking rows (so the live projector pauses), applies whatever arrived
since, drops the live tables and renames the rebuilt ones into their place: a reader
sees the old view or the new one, never a half-built one.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Protocol

from secrets_ledger.projections.checksum import views_checksum
from secrets_ledger.projections.ports import EventSource, TableClone, ViewStore, ViewWriter
from secrets_ledger.projections.view import View

REBUILD_SUFFIX = "__rebuild"
SWAP_ATTEMPTS = 5
Progress = Callable[[int], None]
Read = Callable[[int, int], Sequence[tuple[int, Any]]]
"""(after, limit) -> the next (position, event) pairs."""


class BatchCheck(Protocol):
    """A check replay feeds every event it loads, in the same pass (the transparency
    logs' fold, ``domain.log_fold``): cut into parts for loading processes that each see
    a part of the streams, and merged back once each part is finished."""

    def add_batch(self, batch: Sequence[tuple[int, Any]]) -> None: ...

    def part_of(self, part: int, parts: int) -> BatchCheck: ...

    def finish(self) -> None: ...

    def merge(self, other: Any) -> None: ...


Loader = Callable[[Sequence[type[View]], int, int, Progress | None, BatchCheck | None], None]
"""Loads every event up to a position into the views' rebuild tables, some other way
than in this thread (PostgreSQL's worker processes, ``adapters.postgres.parallel_replay``):
(views, position, batch size, progress, check to feed and finish)."""


def _apply_batch(tx: ViewWriter, source: EventSource, views: Sequence[View], after: int,
                 until: int | None, batch_size: int, progress: Progress | None) -> int:
    """Applies the next batch after ``after`` (up to ``until``); returns the new position."""
    batch = [item for item in source.read(after, batch_size) if until is None or item[0] <= until]
    if batch:
        for view in views:
            view.apply_batch(tx, batch)
    if progress is not None and batch:
        progress(len(batch))
    return batch[-1][0] if batch else after


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pauses Python's cycle collector: a bulk load allocates millions of short-lived
    rows and events (no cycles among them), and collecting after every 700 allocations
    cost about 30% of a replay's CPU time (measured on 100,000 events)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_views(store: ViewStore, read: Read, view_classes: Sequence[type[View]], target: int,
               batch_size: int, progress: Progress | None, check: BatchCheck | None = None,
               projects: Callable[[Any], bool] | None = None) -> int:
    """Applies every event ``read`` yields up to ``target`` to the views' rebuild tables,
    many per transaction, outside any lock the live side needs; returns the position
    reached. ``check`` is fed every event read; ``projects`` (if given) says which of
    them go into the views (a loading process that reads more than its part).

    This thread reads a batch and turns it into rows while another writes the previous
    batch's rows (one transaction per batch, in order), so that the writes' round trips
    overlap the Python work.

    (A third thread reading ahead cost more in switching between threads than it
    saved: once the read scans the positions' index, PostgreSQL answers it in about
    0.4 µs an event. Measured on 1,000,000 events, two processes: 1 s less CPU.)
    """
    views = [cls(REBUILD_SUFFIX) for cls in view_classes]

    def write(rows: list[Any]) -> None:
        with store.bulk_transaction() as tx:
            for view, view_rows in zip(views, rows, strict=True):
                view.write(tx, view_rows)

    position = 0
    with _collector_paused(), ThreadPoolExecutor(1, thread_name_prefix="replay-write") as writer:
        written: Future[None] | None = None
        while position < target:
            batch = [item for item in read(position, batch_size) if item[0] <= target]
            if not batch:
                break
            position = batch[-1][0]
            if check is not None:
                check.add_batch(batch)
            if projects is not None:
                batch = [item for item in batch if projects(item[1])]
            rows = _rows_of(views, batch)
            if written is not None:
                written.result()  # one batch in the writer at a time, in order
            written = writer.submit(write, rows)
            if progress is not None:
                progress(len(batch))
        if written is not None:
            written.result()
    return position


class DamagedEvent(Exception):
    """A stored event that cannot be projected (edited into another shape): replay stops,
    and the live views stay as they were."""

    def __init__(self, position: int) -> None:
        super().__init__(f"the stored event at position {position} cannot be projected"
                         " (damaged); replay stopped and left the live views as they were:"
                         " run `secrets-ledger verify` to see where the history breaks")
        self.position = position

    def __reduce__(self) -> tuple[type[DamagedEvent], tuple[int]]:
        return DamagedEvent, (self.position,)  # raised in a worker process, re-raised here


def _rows_of(views: Sequence[View], batch: Sequence[tuple[int, Any]]) -> list[Any]:
    try:
        return [view.rows_of(batch) for view in views]
    except Exception:
        for item in batch:  # which event: the batch again, one event at a time
            try:
                for view in views:
                    view.rows_of([item])
            except Exception:
                raise DamagedEvent(item[0]) from None
        raise


def _build_indexes(store: ViewStore, clones: Sequence[TableClone]) -> None:
    """Builds the clones' pending indexes side by side, each in a connection of its own
    (``CREATE INDEX`` takes a SHARE lock, so builds on one table do not wait for each
    other), then makes the keys of their indexes in one transaction."""
    builds = [statement for clone in clones for statement in clone.builds]
    if builds:
        cores = os.cpu_count() or 1
        # As many builds as cores or more: each keeps to one core (parallel workers of
        # its own would contend for the same cores: 2.18 s for the four builds of
        # 1,000,000 events without them, 2.31-2.38 s with two each, on two cores).
        share_cores = len(builds) >= cores
        with ThreadPoolExecutor(min(len(builds), cores),
                                thread_name_prefix="replay-index") as pool:
            for done in [pool.submit(store.build_index, statement, share_cores)
                         for statement in builds]:
                done.result()
        for clone in clones:
            clone.builds.clear()
    with store.transaction() as tx:
        for clone in clones:
            clone.attach_keys(tx)


def replay(store: ViewStore, source: EventSource, view_classes: Sequence[type[View]],
           progress: Progress | None = None, batch_size: int = 20_000,
           loader: Loader | None = None, check: BatchCheck | None = None) -> str:
    """Rebuilds the given views and swaps them in; returns their checksum. ``loader``
    does the bulk load instead of this thread (the events that arrive meanwhile are
    still applied here, at the swap). ``check`` is fed every event of the bulk load,
    then finished.

    ``batch_size`` events (for a loader, positions) go into one transaction: 20,000
    replayed 1,000,000 events in two processes about 0.5 s faster than 10,000, with
    fewer round trips and fewer repeated keys to merge; 40,000 no faster.
    """
    rebuilt = [cls(REBUILD_SUFFIX) for cls in view_classes]
    clones: list[TableClone] = []
    with store.transaction() as tx:
        for view in rebuilt:
            for table in view.tables:
                clone = store.clone_table(tx, table, view.t[table])
                if table not in view.append_only:
                    clone.build_indexes(tx)  # merges and updates need their keys
                clones.append(clone)
    target = source.max_position()
    try:
        if loader is None:
            position = load_views(store, source.read, view_classes, target, batch_size,
                                  progress, check)
            if check is not None:
                check.finish()
        else:
            loader(view_classes, target, batch_size, progress, check)
            position = target
        _build_indexes(store, clones)  # one sort per index beats keeping it up to date
    except BaseException:
        with store.transaction() as tx:  # the live views were never touched
            for clone in clones:
                tx.execute(f"DROP TABLE IF EXISTS {clone.clone}")
        raise
    for attempt in range(SWAP_ATTEMPTS):  # a deadlock with a live server's readers
        try:
            _swap(store, source, rebuilt, clones, position, batch_size, progress)
            break
        except store.transient:
            if attempt == SWAP_ATTEMPTS - 1:
                raise
    return views_checksum(store, view_classes)


def _swap(store: ViewStore, source: EventSource, rebuilt: Sequence[View],
          clones: Sequence[TableClone], position: int, batch_size: int,
          progress: Progress | None) -> None:
    """Applies what arrived since the load, then swaps the rebuilt tables in, in one
    transaction (the live projector waits on the tracking rows meanwhile)."""
    with store.transaction() as tx:
        for view in rebuilt:
            tx.lock_position(view.name)
        while (reached := _apply_batch(tx, source, rebuilt, position, None, batch_size,
                                       progress)) != position:
            position = reached
        for clone in clones:
            clone.swap(tx)
        for view in rebuilt:
            tx.set_position(view.name, position)
