"""Group commit: one writer thread turns many concurrent commands into one transaction.

Every save on PostgreSQL locks the events table, so one commit per write caps the
ledger at a few hundred writes per second however many callers there are. Here callers
hand their command to the writer and wait; the writer runs every waiting command
against its tenant's aggregate (in arrival order, so two commands on one tenant see
each other), stores the new data keys in one transaction, then saves all aggregates
(and the batch's read records) in one ``Application.save`` — atomic across them — and
only then answers each caller.

Callers on a thread block on their job; callers on an event loop await it
(``execute_with_token_async``, ``read_async``), so a server needs no thread per request
in flight. Those two kinds of job carry a lookup the writer does for the whole batch in
one statement, just before running it: a command for the holder of a token (the
tokens' rows), and a value read (token, stream head, view row and keys; the value is
then opened and its read recorded with the batch). Sixteen requests in flight are then
one statement, not sixteen.

Aggregates stay cached between batches. In this process they are always fresh (only
this thread writes them); another process may have appended, which surfaces as a
version conflict on save: the batch is then re-run on reloaded aggregates, so every
precondition is re-checked against fresh state. A refusal computed on a cached
aggregate is confirmed against the store before it is reported.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from secrets_ledger.domain.errors import IdempotencyKeyReused, LedgerError, Unavailable
from secrets_ledger.domain.reads import ReadRecord, ValueReads
from secrets_ledger.domain.tenant import RequestContext, Tenant
from secrets_ledger.projections.views import outcome_of
from secrets_ledger.service.clock import utc_now
from secrets_ledger.service.keystore import KeyStore, NewDataKey
from secrets_ledger.service.storage import LedgerEvents

log = logging.getLogger(__name__)
T = TypeVar("T")
MAX_ATTEMPTS = 25
MAX_BATCH = 256
CACHE_SIZE = 2_000
RECENT_IDEMPOTENCY_KEYS = 100_000
GATHER_SECONDS = 0.001
GATHER_POLL_SECONDS = 0.0001


@dataclass
class Effects:
    """What a command needs done in the key store before its event is saved."""

    data_keys: list[NewDataKey] = field(default_factory=list)
    before_save: list[Callable[[], None]] = field(default_factory=list)


Command = Callable[[Tenant | None, Effects], tuple[Tenant, T]]
Replay = Callable[[dict[str, Any]], T]
TokenRows = Callable[[Sequence[str]], Mapping[str, Sequence[Any]]]
ValueRows = Callable[[Sequence[tuple[Any, ...]]], Sequence[Sequence[Any]]]


def _held_lock() -> threading.Lock:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass
class _Job(Generic[T]):
    tenant_id: UUID | None
    run: Command[T] | None
    ctx: RequestContext | None
    replayed: Replay[T] | None
    read: list[ReadRecord] | None = None  # the reads a job records
    result: Any = field(default=None, repr=False)  # may be a value
    error: BaseException | None = None
    new_events: list[Any] = field(default_factory=list)
    done: bool = False  # read and set by the writer thread only
    # Held until the job is finished: the caller blocks acquiring it. One lock per job,
    # released once, costs less than an Event (a Condition and a lock per wait).
    _finished: threading.Lock = field(default_factory=_held_lock, repr=False)
    notify: Callable[[], None] | None = None  # how a caller on an event loop is woken
    # A command for the holder of a token: ``authorized`` gets the token's row (read by
    # the writer with the batch's other tokens) and returns the command, or refuses.
    token_hash: str | None = None
    authorized: Callable[[Sequence[Any] | None], Command[T]] | None = None
    # A value read: ``answer`` gets its row of the batch's one read statement (``lookup``
    # are its parameters) and returns the result and the reads to record.
    lookup: tuple[Any, ...] | None = field(default=None, repr=False)  # holds a token hash
    answer: Callable[[Sequence[Any]], tuple[T, list[ReadRecord]]] | None = None

    def finish(self, result: Any = None, error: BaseException | None = None) -> None:
        if self.done:  # answered already: a caller is woken once
            return
        self.result, self.error = result, error
        self.done = True
        self._finished.release()
        if self.notify is not None:
            self.notify()

    def wait(self) -> None:
        self._finished.acquire()

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result

    @property
    def idempotency(self) -> tuple[UUID, str] | None:
        if self.ctx is None or self.ctx.idempotency_key is None or self.tenant_id is None:
            return None
        return self.tenant_id, self.ctx.idempotency_key


def _prepared(job: _Job[Any], step: Callable[[_Job[Any]], bool]) -> bool:
    """Runs a job's preparing ``step`` (whether the job goes on); a refusal, or any
    other failure, answers the job instead."""
    try:
        return step(job)
    except LedgerError as error:
        job.finish(error=error)
    except Exception as error:
        # The type only: a message could quote the input, which may be a value.
        log.error("preparing a job failed: %s", type(error).__name__)
        job.finish(error=Unavailable("the request failed; retry"))
    return False


def _resolve(finished: asyncio.Future[None]) -> None:
    if not finished.done():
        finished.set_result(None)


class BatchWriter:
    def __init__(self, events: LedgerEvents, keys: KeyStore, on_saved: Callable[[], None],
                 stored_outcome: Callable[[UUID, RequestContext], dict[str, Any] | None],
                 token_rows: TokenRows, value_rows: ValueRows) -> None:
        self.events = events
        self.keys = keys
        self.on_saved = on_saved
        # Looks an idempotency key up in the store: after a conflict, another process
        # may have stored the same request first.
        self.stored_outcome = stored_outcome
        self.token_rows = token_rows  # the rows of tokens, by hash, read in one statement
        self.value_rows = value_rows  # the rows of value reads, in order, in one statement
        self._queue: queue.SimpleQueue[_Job[Any] | None] = queue.SimpleQueue()
        self._closing = threading.Lock()
        self._closed = False
        self._cache: OrderedDict[UUID, Tenant] = OrderedDict()
        # Outcomes of recent idempotent commands: closes the race between two identical
        # requests that both missed the idempotency view before either was saved.
        self._batch_outcomes: dict[tuple[UUID, str], tuple[str | None, dict[str, Any]]] = {}
        self._recent: OrderedDict[tuple[UUID, str], tuple[str | None, dict[str, Any]]] = (
            OrderedDict())
        self._thread = threading.Thread(target=self._loop, name="ledger-writer", daemon=True)
        self._thread.start()

    # ---- what callers use -------------------------------------------------------------

    def execute(self, tenant_id: UUID, ctx: RequestContext, run: Command[T],
                replayed: Replay[T] | None) -> T:
        return cast(T, self._wait(_Job(tenant_id, run, ctx, replayed)))

    def record_read(self, record: ReadRecord) -> None:
        """Records a value read with the next batch (one event for all its reads)."""
        self._wait(_Job(None, None, None, None, read=[record]))

    async def execute_with_token_async(
            self, tenant_id: UUID, token_hash: str,
            authorized: Callable[[Sequence[Any] | None], Command[T]]) -> T:
        """``execute`` for a caller on an event loop (the loop is not blocked while the
        batch commits, and no thread waits for it) of the command that ``authorized``
        returns for the token's row. The writer reads the rows of every such job in a
        batch in one statement, just before it runs their commands, so a token revoked
        by any process is refused from then on, and a busy server does not read one
        token per request."""
        return cast(T, await self._wait_async(_Job(tenant_id, None, None, None,
                                                   token_hash=token_hash,
                                                   authorized=authorized)))

    async def read_async(self, lookup: tuple[Any, ...],
                         answer: Callable[[Sequence[Any]], tuple[T, list[ReadRecord]]]) -> T:
        """A value read for a caller on an event loop. The writer reads the rows of every
        read in its batch in one statement, has ``answer`` judge each row (and open its
        value), saves the batch's reads with it (one event), and only then hands out the
        result: a value never leaves before its read is on file."""
        return cast(T, await self._wait_async(_Job(None, None, None, None, lookup=lookup,
                                                   answer=answer)))

    async def record_read_async(self, record: ReadRecord) -> None:
        """``record_read`` for a caller on an event loop."""
        await self._wait_async(_Job(None, None, None, None, read=[record]))

    def close(self) -> None:
        with self._closing:
            self._closed = True
            self._queue.put(None)
        self._thread.join(timeout=30)

    def _submit(self, job: _Job[Any]) -> None:
        with self._closing:  # a job is queued before the stop, or refused
            if self._closed or not self._thread.is_alive():
                raise Unavailable("the ledger is shutting down")
            self._queue.put(job)

    def _wait(self, job: _Job[Any]) -> Any:
        self._submit(job)
        job.wait()
        return job.outcome()

    async def _wait_async(self, job: _Job[Any]) -> Any:
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[None] = loop.create_future()

        def notify() -> None:  # in the writer thread
            with suppress(RuntimeError):  # the loop was closed: nobody waits any more
                loop.call_soon_threadsafe(_resolve, finished)

        job.notify = notify
        self._submit(job)
        # A cancelled caller (the client left) does not withdraw the job: a read it
        # records is then on file though its value was never sent, which errs on the
        # side of the audit trail.
        await finished
        return job.outcome()

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
            try:
                self._commit(self._answer_reads(self._authorize(batch)))
            except BaseException as error:  # never leave a caller waiting
                log.error("write batch failed: %s", type(error).__name__)
                for job in batch:
                    if not job.done:
                        job.finish(error=Unavailable("the write could not be stored; retry"))

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
        """Gives the callers of the last batch a moment to send their next command.

        The callers woken by a commit come back one at a time (each needs the GIL), so
        without waiting the writer takes the first few, commits them, and the rest
        wait a whole commit: concurrent callers settle into two half-size batches, two
        commits where one would do. Waiting until as many jobs as the last batch had
        are queued, for at most ``GATHER_SECONDS``, keeps them in one batch. A lone
        caller (last batch of one) never waits, and the wait ends as soon as a pause of
        ``GATHER_POLL_SECONDS`` brings no new job: callers that are not coming back
        at once (requests arriving apart) cost at most one pause.
        """
        deadline = time.monotonic() + GATHER_SECONDS
        queued = self._queue.qsize()
        while queued + 1 < expected and time.monotonic() < deadline:
            time.sleep(GATHER_POLL_SECONDS)  # releases the GIL to the callers
            arrived, queued = self._queue.qsize() - queued, self._queue.qsize()
            if arrived <= 0:
                return

    def _authorize(self, batch: list[_Job[Any]]) -> list[_Job[Any]]:
        """Gives every token-bearing job its command (its token's row read once for the
        batch); those refused are answered here. The jobs that go on, in order."""
        guarded = sorted({job.token_hash for job in batch
                          if job.authorized is not None and job.token_hash is not None})
        if not guarded:
            return batch
        rows = self.token_rows(guarded)

        def authorize(job: _Job[Any]) -> bool:
            assert job.authorized is not None
            job.run, job.authorized = job.authorized(rows.get(job.token_hash or "")), None
            return True

        return [job for job in batch if job.authorized is None or _prepared(job, authorize)]

    def _answer_reads(self, batch: list[_Job[Any]]) -> list[_Job[Any]]:
        """Reads the rows of the batch's value reads in one statement and has each judged;
        those refused (or with nothing to record) are answered here. The jobs that go
        on, in order: a read goes on with its result and the events to save."""
        reading = [job for job in batch if job.answer is not None]
        if not reading:
            return batch
        rows = iter(self.value_rows([job.lookup or () for job in reading]))

        def answer(job: _Job[Any]) -> bool:  # called for the reading jobs, in their order
            assert job.answer is not None
            job.result, job.read = job.answer(next(rows))
            job.answer = None
            if not job.read:  # nothing to record (the caller reads another way)
                job.finish(job.result)
            return bool(job.read)

        return [job for job in batch if job.answer is None or _prepared(job, answer)]

    def _commit(self, batch: list[_Job[Any]]) -> None:
        for attempt in range(MAX_ATTEMPTS):
            aggregates: dict[UUID, Tenant] = {}
            self._batch_outcomes = {}
            effects = Effects()
            staged: list[tuple[_Job[Any], Any]] = []
            for job in batch:
                if job.read is not None:
                    staged.append((job, job.result))
                    continue
                try:
                    staged.append((job, self._stage(job, aggregates, effects)))
                except LedgerError as error:
                    job.result, job.error = None, error
                except Exception as error:
                    # The type only: a message could quote the input, which may be a value.
                    log.error("command failed: %s", type(error).__name__)
                    job.result, job.error = None, Unavailable("the command failed; retry")
            try:
                self._save(aggregates, effects,
                           [read for job, _ in staged if job.read for read in job.read])
            except IntegrityError:
                # Another process appended to one of these tenants: reload and re-run all.
                for tenant_id in aggregates:
                    self._cache.pop(tenant_id, None)
                for job in batch:
                    job.error = None
                time.sleep(random.uniform(0, 0.002 * 2 ** min(attempt, 6)))  # noqa: S311
                continue
            except Exception:
                for tenant_id in aggregates:
                    self._cache.pop(tenant_id, None)
                raise
            for tenant in aggregates.values():
                self._remember(tenant)
            self._settle(batch, staged)
            return
        for job in batch:
            job.finish(error=Unavailable("the tenant is too contended right now; retry"))

    def _stage(self, job: _Job[Any], aggregates: dict[UUID, Tenant], effects: Effects) -> Any:
        assert job.tenant_id is not None
        assert job.run is not None
        job.new_events = []
        aggregate = aggregates.get(job.tenant_id)
        if aggregate is None:
            aggregate = self._cached_or_stored(job.tenant_id)
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
            tenant, result = job.run(aggregate, local)
        except LedgerError:
            # A refusal computed on a cached aggregate may be stale: confirm it first.
            if aggregate is None or aggregate.pending_events or not self._fast_forward(
                    aggregate):
                raise
            tenant, result = job.run(aggregate, local)
        aggregates[job.tenant_id] = tenant
        job.new_events = list(tenant.pending_events[before:])
        if job.idempotency is not None and job.new_events and job.ctx is not None:
            self._batch_outcomes[job.idempotency] = (job.ctx.request_hash,
                                                     outcome_of(job.new_events[-1]))
        effects.data_keys += local.data_keys
        effects.before_save += local.before_save
        return result

    def _replayed(self, job: _Job[Any]) -> Any:
        key = job.idempotency
        if key is None or job.replayed is None or job.ctx is None:
            return None
        remembered = self._batch_outcomes.get(key) or self._recent.get(key)
        if remembered is None:
            stored = self.stored_outcome(key[0], job.ctx)  # compares the request hashes
            return None if stored is None else job.replayed(stored)
        request_hash, outcome = remembered
        if request_hash != job.ctx.request_hash:
            raise IdempotencyKeyReused("this Idempotency-Key was used for another request")
        return job.replayed(outcome)

    def _save(self, aggregates: dict[UUID, Tenant], effects: Effects,
              read_records: list[ReadRecord]) -> None:
        changed = [tenant for tenant in aggregates.values() if tenant.pending_events]
        if not changed and not read_records:
            return
        # The batch's reads, one event: made for each attempt (a save empties its
        # aggregate's pending events, and a retried batch must store them again).
        reads = [ValueReads.record(read_records, utc_now())] if read_records else []
        for effect in effects.before_save:
            effect()
        if self.keys.db.dialect == "postgres":
            # One transaction: the recorder stores the data keys beside the events.
            rows = [(k.dek_id, k.tenant_id, k.key_version, k.wrapped) for k in effects.data_keys]
            self.events.save(*changed, *reads, data_keys=rows)
        else:
            # Another file: the keys commit first, so no stored event lacks its key.
            self.keys.store_data_keys(effects.data_keys)
            self.events.save(*changed, *reads)
        self.on_saved()

    def _settle(self, batch: list[_Job[Any]], staged: list[tuple[_Job[Any], Any]]) -> None:
        self._recent.update(self._batch_outcomes)
        while len(self._recent) > RECENT_IDEMPOTENCY_KEYS:
            self._recent.popitem(last=False)
        for job, result in staged:
            if job.error is None:
                job.finish(result)
        for job in batch:
            if not job.done:
                job.finish(error=job.error)

    # ---- the aggregate cache ----------------------------------------------------------

    def _cached_or_stored(self, tenant_id: UUID) -> Tenant | None:
        cached = self._cache.pop(tenant_id, None)
        if cached is not None:
            return cached
        try:
            return cast(Tenant, self.events.repository.get(tenant_id))
        except AggregateNotFoundError:
            return None

    def _fast_forward(self, tenant: Tenant) -> bool:
        """Applies events other processes appended; True if there were any."""
        newer = list(self.events.events.get(tenant.id, gt=tenant.version))
        for event in newer:
            cast(Tenant.Event, event).mutate(tenant)
        return bool(newer)

    def _remember(self, tenant: Tenant) -> None:
        self._cache[tenant.id] = tenant
        self._cache.move_to_end(tenant.id)
        while len(self._cache) > CACHE_SIZE:
            self._cache.popitem(last=False)
