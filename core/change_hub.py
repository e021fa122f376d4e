"""The change feed's fan-out: one reader of the store per process, however many follow.

Subscribers do not query the store when a change commits. The hub does, once: when the
projector says it applied a batch (or every ``poll`` seconds, for what another process
projected, while anyone follows), it reads every tenant's new changes in one statement
and keeps them in memory (at most ``kept`` changes, the newest), then wakes every
waiting subscriber, which filters them for itself (subscribers that follow alike share
one answer). A subscriber whose cursor is older than what the hub keeps reads the store
page by page until it is not (catching up costs queries, as it must; following does
not).

A subscriber that has caught up may also hand the hub a ``Deliver`` callable: the hub
then calls it with each new page as it reads them, in one loop, instead of waking the
subscriber's coroutine: a wake-up, through every layer between the hub and the socket,
cost far more than the write itself (with 200 subscribers on the writers' process,
they kept 0.68x their throughput that way, 0.82x with the hub writing). A delivery
refused (the subscriber's socket is full) detaches it: its coroutine goes on from the
last page delivered, and waits for the socket there.

A hub lives on one event loop (it wakes that loop's coroutines); it stops after
``idle`` seconds without a subscriber, and its next subscriber starts it afresh.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from secrets_ledger.core.feed_ports import ChangeRow, ChangeRows
from secrets_ledger.domain.errors import Unavailable

log = logging.getLogger(__name__)
Run = Callable[..., Awaitable[Any]]
Deliver = Callable[[list[ChangeRow], int], bool]
"""Sends a page (its changes, and the cursor past them) at once, without waiting; False
when it cannot now (nothing of the page was sent)."""
FETCH = 1000
ANSWERS_KEPT = 1000
FAN_OUT_INTERVAL = 0.03
"""Seconds between two fan-outs at most: under a stream of commits, each fan-out carries
the changes of several batches (it costs a write to every subscriber's socket, and the
subscriber a read, whatever it carries). Measured with 200 subscribers (bench/feed.py,
split): every 20 ms, p99 59 ms and 0.83x the writers' throughput; every 40 ms, 95 ms
and 0.88x."""


@dataclass(frozen=True)
class ChangeFilter:
    """What one subscriber follows: a tenant's changes (None: every tenant's), under a
    key prefix, of some actions (None: all)."""

    tenant: str | None = None
    prefix: str = ""
    actions: Collection[str] | None = None

    def matches(self, row: ChangeRow) -> bool:
        if self.prefix and (row.key is None or not row.key.startswith(self.prefix)):
            return False
        return self.actions is None or row.action in self.actions


@dataclass(eq=False)
class _Listener:
    which: ChangeFilter
    cursor: int
    limit: int
    deliver: Deliver
    detached: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class _Batch:
    upto: int  # every change up to here (after the previous batch's) is in ``rows``
    rows: list[ChangeRow]
    by_tenant: dict[str, list[ChangeRow]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for row in self.rows:
            self.by_tenant.setdefault(row.tenant, []).append(row)


class ChangeHub:
    def __init__(self, rows: ChangeRows, run: Run, *, poll: float = 0.025,
                 kept: int = 10_000, idle: float = 30.0) -> None:
        """``run``: how the hub runs a blocking read (the core's query threads)."""
        self.rows = rows
        self.run = run
        self.poll = poll
        self.kept = kept
        self.idle = idle
        self.loop = asyncio.get_running_loop()
        self.start = -1  # what the hub keeps is after this position (-1: not started)
        self.head = -1  # ... and up to this one
        self.fetches = 0  # reads of the store (one per batch the projector applied)
        self.delivered_pages = 0  # pages the hub handed to a subscriber's Deliver
        self.refused_pages = 0  # ... that it refused (its socket full, or gone)
        self._batches: list[_Batch] = []
        self._uptos: list[int] = []
        self._kept_rows = 0
        self._poke = asyncio.Event()
        self._ready = asyncio.Event()
        self._failed: Exception | None = None
        self._stopped = False
        self._moved = asyncio.Event()
        self._answers: dict[tuple[ChangeFilter, int, int], tuple[list[ChangeRow], int]] = {}
        self._task: asyncio.Task[None] | None = None
        self._listeners: dict[_Listener, None] = {}  # in the order they came
        self._users = 0
        self._last_use = time.monotonic()

    @property
    def following(self) -> bool:
        """Whether the hub follows the store now (it stops when nobody has for a while)."""
        return self._task is not None and not self._task.done()

    def poke(self) -> None:
        """The projector applied a batch (any thread)."""
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody follows there
            self.loop.call_soon_threadsafe(self._poke.set)

    def stop(self) -> None:
        """Stops following (any thread): the server or the storage is closing. Every
        waiting subscriber wakes, and is told (Unavailable) when it asks again."""
        self._stopped = True
        with contextlib.suppress(RuntimeError):
            self.loop.call_soon_threadsafe(self._wake_all)

    def _wake_all(self) -> None:
        self._poke.set()
        self._moved.set()
        for listener in list(self._listeners):
            self._detach(listener)

    async def started(self) -> None:
        """Starts following the store, if not already; returns once ``head`` is known."""
        self._last_use = time.monotonic()
        if self._stopped:
            raise Unavailable("the ledger is closing")
        if not self.following:
            self._ready = asyncio.Event()
            self._task = self.loop.create_task(self._follow())
        await self._ready.wait()
        if not self.following and self._failed is not None:
            raise Unavailable("the change feed cannot read the store; retry shortly")

    def since(self, which: ChangeFilter, after: int, limit: int
              ) -> tuple[list[ChangeRow], int] | None:
        """The changes after ``after`` that the hub holds (at most ``limit``), and the
        cursor that follows them; None when ``after`` is older than what it holds."""
        if after < self.start:
            return None
        # Subscribers that follow alike (most do) share one answer, until the next batch.
        shared = self._answers.get((which, after, limit))
        if shared is not None:
            return shared
        found: list[ChangeRow] = []
        answer = found, max(after, self.head)
        for batch in self._batches[bisect.bisect_right(self._uptos, after):]:
            rows = batch.rows if which.tenant is None else batch.by_tenant.get(which.tenant, ())
            for row in rows:
                if row.position > after and which.matches(row):
                    found.append(row)
                    if len(found) == limit:
                        answer = found, row.position
                        break
            else:
                continue
            break
        if len(self._answers) < ANSWERS_KEPT:
            self._answers[which, after, limit] = answer
        return answer

    async def moved_past(self, cursor: int, timeout: float) -> None:
        """Returns once the hub holds changes past ``cursor``, or after ``timeout``."""
        self._users += 1
        try:
            moved = self._moved
            if self.head <= cursor:
                async with asyncio.timeout(timeout):  # no task per wait, as wait_for makes
                    await moved.wait()
        except TimeoutError:
            pass
        finally:
            self._users -= 1
            self._last_use = time.monotonic()

    async def delivered(self, which: ChangeFilter, cursor: int, limit: int,
                        deliver: Deliver, timeout: float) -> int:
        """Calls ``deliver`` with each page past ``cursor`` (at most ``limit`` changes) as
        the hub reads it, for up to ``timeout`` seconds, or until a delivery is refused or
        the hub stops; returns the cursor past the last page delivered. Only for a
        subscriber that holds every change up to ``head`` (else it returns at once)."""
        if self.head > cursor or self._stopped:
            return cursor
        listener = _Listener(which, cursor, limit, deliver)
        self._listeners[listener] = None
        self._users += 1
        try:
            async with asyncio.timeout(timeout):
                await listener.detached.wait()
        except TimeoutError:
            pass
        finally:
            self._listeners.pop(listener, None)
            self._users -= 1
            self._last_use = time.monotonic()
        return listener.cursor

    def _detach(self, listener: _Listener) -> None:
        self._listeners.pop(listener, None)
        listener.detached.set()

    def _push(self) -> None:
        for listener in list(self._listeners):
            while True:
                held = self.since(listener.which, listener.cursor, listener.limit)
                if held is None:  # not expected: it held everything up to the last head
                    self._detach(listener)
                    break
                rows, cursor = held
                if rows and not self._delivered(listener, rows, cursor):
                    self._detach(listener)
                    break
                listener.cursor = cursor
                if len(rows) < listener.limit:
                    break

    def _delivered(self, listener: _Listener, rows: list[ChangeRow], cursor: int) -> bool:
        try:
            done = listener.deliver(rows, cursor)
        except Exception as error:  # its type only, as for a failed read
            log.warning("a change feed delivery failed (%s)", type(error).__name__)
            done = False
        if done:
            self.delivered_pages += 1
        else:
            self.refused_pages += 1
        return done

    async def _follow(self) -> None:
        try:
            self.head = self.start = await self.run(self.rows.projected)
            self._batches, self._uptos, self._kept_rows, self._failed = [], [], 0, None
            self._answers.clear()
        except Exception as error:
            self._failed = error
            return
        finally:
            self._ready.set()
        backoff = self.poll
        while self._users or time.monotonic() - self._last_use < self.idle:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._poke.wait(), backoff)
            self._poke.clear()
            if self._stopped:
                return
            try:
                while await self._fetch():
                    pass
                backoff = self.poll
            except Exception as error:  # its type only: a driver's message may quote a row
                log.warning("the change feed could not read the store (%s); retrying",
                            type(error).__name__)
                backoff = min(backoff * 2, 5.0)
            await asyncio.sleep(FAN_OUT_INTERVAL)  # a poke meanwhile is kept for the next

    async def _fetch(self) -> bool:
        """Reads what was projected past ``head``; True when there is more to read."""
        self.fetches += 1
        rows, upto = await self.run(self.rows.changes, None, self.head, FETCH)
        if upto <= self.head:
            return False
        if len(rows) == FETCH:
            upto = rows[-1].position
        if rows:
            self._batches.append(_Batch(upto, rows))
            self._uptos.append(upto)
            self._kept_rows += len(rows)
            while self._kept_rows > self.kept and len(self._batches) > 1:
                dropped = self._batches.pop(0)
                self._uptos.pop(0)
                self._kept_rows -= len(dropped.rows)
                self.start = dropped.upto
        self.head = upto
        self._answers.clear()
        self._push()
        self._moved.set()
        self._moved = asyncio.Event()
        return len(rows) == FETCH
