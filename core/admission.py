"""The writer's queue, bounded by count and by bytes: under any client behaviour the work
waiting in memory stays bounded, and a caller beyond the bound is told at once to retry
(``Overloaded``: 503 with ``Retry-After``) instead of waiting behind a backlog. Work whose
client has gone is dropped before it starts."""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Any, NamedTuple

from secrets_ledger.core.jobs import Job
from secrets_ledger.domain.errors import Overloaded, Unavailable


@dataclass(frozen=True)
class WriterLimits:
    jobs: int = 4096  # queued
    bytes: int = 16 * 1024 * 1024  # of queued requests
    remembered_outcome_bytes: int = 32 * 1024 * 1024  # ``idempotency.RecentOutcomes``


class QueueLoad(NamedTuple):
    """What a writer's queue holds now, and what it refused since the start (metrics)."""

    jobs: int
    bytes: int
    shed: int
    abandoned: int


class WorkQueue:
    def __init__(self, limits: WriterLimits) -> None:
        self.limits = limits
        self._queue: queue.SimpleQueue[Job[Any] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self.jobs = 0  # queued now
        self.bytes = 0  # their requests' bytes
        self.shed = 0  # refused since the start, the queue being full
        self.abandoned = 0  # dropped since the start, their clients having gone

    def put(self, job: Job[Any] | None) -> None:
        """Queues a job (Overloaded if it does not fit), or the stop (None)."""
        if job is not None:
            size = job.request.size
            with self._lock:
                # A lone job larger than the byte bound still gets in, on its own.
                if self.jobs >= self.limits.jobs or (
                        self.jobs and self.bytes + size > self.limits.bytes):
                    self.shed += 1
                    raise Overloaded("the ledger has as much work queued as it may hold;"
                                     " retry in a moment")
                self.jobs += 1
                self.bytes += size
        self._queue.put(job)

    def get(self) -> Job[Any] | None:
        return self._taken(self._queue.get())

    def get_nowait(self) -> Job[Any] | None:
        return self._taken(self._queue.get_nowait())

    def qsize(self) -> int:
        return self._queue.qsize()

    def _taken(self, job: Job[Any] | None) -> Job[Any] | None:
        if job is not None:
            with self._lock:
                self.jobs -= 1
                self.bytes -= job.request.size
        return job

    def wanted(self, batch: list[Job[Any]]) -> list[Job[Any]]:
        """The jobs whose clients are still there; the others are answered (nobody reads
        it) and never started: a write nobody waits for is not made."""
        kept = []
        for job in batch:
            gone = job.request.client_gone
            if gone is not None and gone():
                self.abandoned += 1
                job.finish(error=Unavailable("the client went away"))
            else:
                kept.append(job)
        return kept
