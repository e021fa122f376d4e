"""Replay's bulk load split over processes (PostgreSQL only: one SQLite file has one writer).

One Python process cannot keep PostgreSQL busy: reading, decoding and turning events
into rows is Python work under one GIL (profiled on 1,000,000 events: about 16 µs of CPU
an event; PostgreSQL spends about 7 µs loading the rows), and it waits for PostgreSQL in
between. The tenant streams are independent, and every view row belongs to one tenant (a
read record's audit row only appends), so the events can be cut by stream into parts
that separate processes load side by side into the same rebuild tables: each part holds
every event of its tenants, in order, so merges within a part see them in order, and
rows of different parts never meet. The parent then builds the indexes, applies the tail
and swaps the tables as a one-process replay does (``projections.replay``).

A check fed in the same pass (the transparency logs' fold) is cut by tenant the same
way; each process also reads the read records of the other parts (they add leaves to
the logs of its tenants, in store order) without projecting them, and hands its finished
part back to be merged.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
from collections.abc import Sequence
from functools import partial
from multiprocessing.queues import Queue
from multiprocessing.sharedctypes import Synchronized
from typing import Any

from secrets_ledger.adapters.postgres.events import PostgresEventSource
from secrets_ledger.core.settings import Settings
from secrets_ledger.domain.log_leaves import LEAF_RECORDS
from secrets_ledger.projections.replay import BatchCheck, Loader, Progress, load_views
from secrets_ledger.projections.view import View
from secrets_ledger.projections.views import views_named

POLL_SECONDS = 0.2
MAX_WORKERS = 16
AUTO_MIN_EVENTS = 100_000
"""Below this, starting processes (about half a second each) costs more than it saves."""


def loader_for(settings: Settings, events: int, workers: int | None = None) -> Loader | None:
    """How a replay of ``events`` events should load: in worker processes (``workers``,
    by default one per CPU from ``AUTO_MIN_EVENTS`` events on), or None for in this
    process."""
    if workers is None:
        workers = min(os.cpu_count() or 1, MAX_WORKERS) if events >= AUTO_MIN_EVENTS else 1
    return ParallelLoad(settings, workers) if workers > 1 else None


class ParallelLoad:
    """A ``projections.replay.Loader`` running ``workers`` processes, one per part."""

    def __init__(self, settings: Settings, workers: int) -> None:
        self.settings = settings
        self.workers = workers

    def __call__(self, view_classes: Sequence[type[View]], target: int, batch_size: int,
                 progress: Progress | None, check: BatchCheck | None = None) -> None:
        context = multiprocessing.get_context("spawn")  # the caller has threads: no fork
        loaded: Synchronized[int] = context.Value("q", 0)
        finished: Queue[Any] = context.Queue()
        names = [cls.name for cls in view_classes]
        processes = [
            context.Process(target=_load_part, name=f"replay-part-{part}",
                            args=(self.settings, names, target, part, self.workers,
                                  batch_size, loaded,
                                  None if check is None else check.part_of(part, self.workers),
                                  finished))
            for part in range(self.workers)
        ]
        for process in processes:
            process.start()
        reported, parts = 0, []
        try:
            while any(process.is_alive() for process in processes):
                # A part's check is taken as it comes: its process cannot end before.
                parts.extend(_taken(finished, POLL_SECONDS))
                reported = _report(loaded, reported, progress)
        finally:
            for process in processes:
                if process.is_alive():  # only when this process was interrupted
                    process.terminate()
                process.join()
        _report(loaded, reported, progress)
        failed = [process.name for process in processes if process.exitcode != 0]
        if failed:
            raise RuntimeError(f"replay worker(s) failed: {', '.join(failed)}")
        if check is not None:
            try:  # what the processes put before they ended, still in the queue's pipe
                parts += [finished.get(timeout=POLL_SECONDS * 10)
                          for _ in range(self.workers - len(parts))]
            except queue.Empty:
                raise RuntimeError("a replay worker ended without handing back its part"
                                   " of the check") from None
            for part in parts:
                check.merge(part)
            check.finish()


def _taken(finished: Queue[Any], timeout: float) -> list[Any]:
    try:
        return [finished.get(timeout=timeout)]
    except queue.Empty:
        return []


def _report(loaded: Synchronized[int], reported: int, progress: Progress | None) -> int:
    now = loaded.value
    if progress is not None and now > reported:
        progress(now - reported)
    return now


def _load_part(settings: Settings, view_names: list[str], target: int, part: int,
               parts: int, batch_size: int, loaded: Synchronized[int],
               check: BatchCheck | None, finished: Queue[Any]) -> None:
    """A worker process: loads its part of the events up to ``target``, and feeds
    ``check`` with them and with the other parts' read records."""
    from secrets_ledger.adapters.storage import open_storage  # the worker's own storage

    storage = open_storage(settings, run_migrations=False)

    def advance(count: int) -> None:
        with loaded.get_lock():
            loaded.value += count

    def projects(event: Any) -> bool:  # the stream's last byte, as the part's SQL
        return bool((event.originator_id.int & 0xFF) % parts == part)

    try:
        source = storage.event_source
        assert isinstance(source, PostgresEventSource)
        shared = () if check is None else tuple(cls.__qualname__ for cls in LEAF_RECORDS)
        read = partial(source.read_part, part=part, parts=parts, until=target, shared=shared)
        views = [view for name in view_names for view in views_named(name)]
        load_views(storage.view_store, read, views, target, batch_size, advance, check,
                   projects if shared else None)
        if check is not None:
            check.finish()
            finished.put(check)
    finally:
        storage.close()
