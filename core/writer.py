"""Group commit: one writer thread turns many concurrent requests into one transaction.

Every save on PostgreSQL locks the events table, so one commit per write caps the
ledger at a few hundred writes per second however many callers there are. Here callers
hand their job to the writer and await it on their event loop (no thread waits for a
commit); the writer takes every waiting job and, for the whole batch:

1. authenticates the callers' bearer tokens in one statement, and admits each caller
   for its use case (``policy.authorize``);
2. reads every value read's row (token, stream head, views, keys) in one statement and
   has each judged and opened;
3. runs every command against its tenant's aggregate (in arrival order, so two commands
   on one tenant see each other), then saves all aggregates, the new data keys and the
   batch's read records atomically, and only then answers each caller.

Aggregates stay cached between batches (``aggregates.AggregateCache``). Another process
may have appended, which surfaces as a conflict on save: the batch is then re-run on
reloaded aggregates, so every precondition is re-checked against fresh state.

When the store cannot be reached (a database failover), the batch is run again, on
reloaded aggregates, until it can or ``retry_seconds`` have passed: its callers wait
rather than fail. A save whose connection was lost is asked after by the store's adapter
(``TenantStreams.save``): a batch is never reported failed when it committed, nor stored
twice.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

from secrets_ledger.core.admission import WorkQueue, WriterLimits
from secrets_ledger.core.aggregates import AggregateCache
from secrets_ledger.core.batch_admission import admit_commands, answer_reads
from secrets_ledger.core.idempotency import RecentOutcomes, StoredOutcome
from secrets_ledger.core.jobs import Effects, Job
from secrets_ledger.core.ports import ConcurrentAppend, Ports, StoreUnreachable
from secrets_ledger.domain.errors import Contended, LedgerError, Unavailable
from secrets_ledger.domain.outcomes import outcome_of
from secrets_ledger.domain.read_chain import ReadChain
from secrets_ledger.domain.reads import ValueReads
from secrets_ledger.domain.tenant import Tenant
from secrets_ledger.domain.times import utc_now

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_ATTEMPTS = 25
MAX_BATCH = 256
GATHER_SECONDS = 0.001
GATHER_POLL_SECONDS = 0.0001


class BatchWriter:
    def __init__(self, ports: Ports, on_saved: Callable[[], None],
                 stored_outcome: StoredOutcome, limits: WriterLimits | None = None,
                 retry_seconds: float = 30.0) -> None:
        self.streams = ports.streams
        self.unreachable: tuple[type[BaseException], ...] = (StoreUnreachable,
                                                             *ports.unreachable)
        self.retry_seconds = retry_seconds
        self.tokens = ports.token_rows
        self.lookups = ports.value_lookups
        self.on_saved = on_saved
        limits = limits or WriterLimits()
        self._queue = WorkQueue(limits)
        self._closing = threading.Lock()
        self._closed = False
        self.aggregates = AggregateCache(ports.streams)
        # After a conflict, another process may have stored the same request first.
        self.read_chain = ReadChain()
        self.outcomes = RecentOutcomes(stored_outcome,
                                       max_bytes=limits.remembered_outcome_bytes)
        self._thread = threading.Thread(target=self._loop, name="ledger-writer", daemon=True)
        self._thread.start()

    @property
    def load(self) -> WorkQueue:  # depth, bytes, and what it shed and dropped (metrics)
        return self._queue

    async def run(self, job: Job[T]) -> T:
        """Hands the job to the writer and awaits its answer."""
        return await job.awaited(self._submit)

    def close(self) -> None:
        with self._closing:
            self._closed = True
            self._queue.put(None)
        self._thread.join(timeout=30)

    def _submit(self, job: Job[Any]) -> None:
        with self._closing:  # a job is queued before the stop, or refused
            if self._closed or not self._thread.is_alive():
                raise Unavailable("the ledger is shutting down")
            self._queue.put(job)

    # ---- the writer thread --------------------------------------------------------------

    def _loop(self) -> None:
        previous = 0  # the size of the last batch: how many callers were writing together
        while True:
            first = self._queue.get()
            if first is None:
                self._refuse_queued()
                return
            batch = [first]
            if previous > 1:
                self._gather(previous)
            while len(batch) < MAX_BATCH:
                try:
                    following = self._queue.get_nowait()
                except queue.Empty:
                    break
                if following is None:
                    self._queue.put(None)  # finish this batch, then stop
                    break
                batch.append(following)
            previous = len(batch)
            batch = self._queue.wanted(batch)
            try:
                self._run(batch)
            except BaseException as error:  # never leave a caller waiting
                log.error("write batch failed: %s", type(error).__name__)
                failure = error if isinstance(error, Unavailable) else Unavailable(
                    "the write could not be stored; retry")
                for job in batch:
                    if not job.done:
                        job.finish(error=failure)

    def _run(self, batch: list[Job[Any]]) -> None:
        """Runs the batch, again while the store cannot be reached (nothing of it stored),
        for at most ``retry_seconds``."""
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.02
        while True:
            try:
                self._commit(answer_reads(admit_commands(batch, self.tokens), self.lookups))
                return
            except self.unreachable:
                if time.monotonic() + delay > deadline:
                    raise StoreUnreachable("the database cannot be reached; retry") from None
                # Another node may be the primary now, with what the cache holds or less.
                self.aggregates.clear()
                time.sleep(delay)
                delay = min(delay * 2, 0.5)
                batch = [job for job in batch if not job.done]
                for job in batch:
                    job.error = None  # a refusal is judged again, on the state found then

    def _refuse_queued(self) -> None:
        """Answers what is still queued behind the stop (a batch cut short by it)."""
        while True:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                job.finish(error=Unavailable("the ledger is shutting down"))

    def _gather(self, expected: int) -> None:
        """Gives the callers of the last batch a moment to send their next job: woken by a
        commit one at a time, they would otherwise settle into two half-size batches.
        Waits until as many jobs as the last batch had are queued, for at most
        ``GATHER_SECONDS``, ending when a pause of ``GATHER_POLL_SECONDS`` brings none."""
        deadline = time.monotonic() + GATHER_SECONDS
        queued = self._queue.qsize()
        while queued + 1 < expected and time.monotonic() < deadline:
            time.sleep(GATHER_POLL_SECONDS)  # releases the GIL to the callers
            arrived, queued = self._queue.qsize() - queued, self._queue.qsize()
            if arrived <= 0:
                return

    def _commit(self, batch: list[Job[Any]]) -> None:
        for attempt in range(MAX_ATTEMPTS):
            aggregates: dict[UUID, Tenant] = {}
            self.outcomes.batch = {}
            effects = Effects()
            staged: list[tuple[Job[Any], Any]] = []
            for job in batch:
                if job.command is None:  # a read: its result waits for its record
                    staged.append((job, job.result))
                    continue
                try:
                    staged.append((job, self._stage(job, aggregates, effects)))
                except self.unreachable:
                    raise  # the whole batch runs again (``_run``)
                except LedgerError as error:
                    job.result, job.error = None, error
                except Exception as error:
                    # The type only: a message could quote the input, which may be a value.
                    log.error("command failed: %s", type(error).__name__)
                    job.result, job.error = None, Unavailable("the command failed; retry")
            try:
                self._save(aggregates, effects, [job for job, _ in staged])
            except ConcurrentAppend:
                # Another process appended to one of these tenants: reload and re-run all.
                for tenant_id in aggregates:
                    self.aggregates.drop(tenant_id)
                for job in batch:
                    job.error = None
                time.sleep(random.uniform(0, 0.002 * 2 ** min(attempt, 6)))  # noqa: S311
                continue
            except BaseException:
                for tenant_id in aggregates:
                    self.aggregates.drop(tenant_id)
                raise
            for tenant in aggregates.values():
                self.aggregates.keep(tenant)
            self._settle(batch, staged)
            return
        for job in batch:
            job.finish(error=Contended("the tenant is too contended right now; retry"))

    def _stage(self, job: Job[Any], aggregates: dict[UUID, Tenant], effects: Effects) -> Any:
        assert job.tenant_id is not None
        assert job.command is not None
        assert job.ctx is not None
        job.new_events = []
        aggregate = aggregates.get(job.tenant_id)
        if aggregate is None:
            aggregate = self.aggregates.take(job.tenant_id)
            if aggregate is not None:
                aggregates[job.tenant_id] = aggregate
        # After loading: an identical request stored before the load is seen here, one
        # stored after it makes this batch's save conflict and come back here.
        replay = self._replayed(job)
        if replay is not None:
            return replay
        before = len(aggregate.pending_events) if aggregate else 0
        local = Effects()
        try:
            tenant, result = job.command(aggregate, local, job.ctx)
        except LedgerError:
            # A refusal computed on a cached aggregate may be stale: confirm it first.
            if aggregate is None or aggregate.pending_events or not self.aggregates.fast_forward(
                    aggregate):
                raise
            tenant, result = job.command(aggregate, local, job.ctx)
        aggregates[job.tenant_id] = tenant
        job.new_events = list(tenant.pending_events[before:])
        if job.idempotency is not None and job.new_events:
            self.outcomes.batch[job.idempotency] = (job.ctx.request_hash,
                                                     outcome_of(job.new_events[-1]))
        effects.data_keys += local.data_keys
        effects.before_save += local.before_save
        return result

    def _replayed(self, job: Job[Any]) -> Any:
        if job.idempotency is None or job.replayed is None or job.ctx is None:
            return None
        outcome = self.outcomes.first_outcome(job.idempotency, job.ctx)
        return None if outcome is None else job.replayed(outcome)

    def _save(self, aggregates: dict[UUID, Tenant], effects: Effects,
              staged: list[Job[Any]]) -> None:
        changed = [tenant for tenant in aggregates.values() if tenant.pending_events]
        records = [read for job in staged for read in job.reads]
        if not changed and not records:
            return
        # The batch's reads, one event, next in this writer's chain: made for each attempt
        # (a retried batch must store them again, at the same place in the chain).
        reads = [ValueReads.record(records, utc_now(), self.read_chain)] if records else []
        for effect in effects.before_save:
            effect()
        self.streams.save(changed, reads, effects.data_keys)
        for stored in reads:
            self.read_chain.stored(stored.link)
        self.on_saved()

    def _settle(self, batch: list[Job[Any]], staged: list[tuple[Job[Any], Any]]) -> None:
        self.outcomes.settle()
        for job, result in staged:
            if job.error is None:
                job.finish(result)
        for job in batch:
            if not job.done:
                job.finish(error=job.error)
