"""Follows the event store in order and applies each event to each view exactly once.

Exactly once: a batch of view rows and the view's new tracking position commit in one
transaction, and that transaction first re-reads the position under a lock and gives
up if another projector moved it. A crash rolls the batch back; the next run resumes
from the committed position. Both backends are followed by polling ``position > last``
(positions have gaps, so nothing assumes they are contiguous).

The projector is also what the core waits on for read-your-writes (``core.ports.
ViewsFollower``): a query waits until the views hold what it must see.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from secrets_ledger.projections.ports import EventSource, ViewStore
from secrets_ledger.projections.view import View
from secrets_ledger.projections.views import ALL_VIEWS

log = logging.getLogger(__name__)


class ProjectionMoved(Exception):
    """Another projector advanced this view first; the batch was rolled back."""


class Projector:
    def __init__(self, store: ViewStore, source: EventSource,
                 views: Sequence[View] | None = None, batch_size: int = 1000) -> None:
        self.store = store
        self.source = source
        self.views = list(views) if views is not None else [cls() for cls in ALL_VIEWS]
        self.batch_size = batch_size
        self._wake = threading.Event()
        self.advanced = threading.Condition()
        self.following = False  # True while run() follows the store in a thread
        self._advance_hooks: list[Callable[[], None]] = []

    def on_advance(self, hook: Callable[[], None]) -> None:
        """Calls ``hook`` (in the applying thread) after each batch applied."""
        self._advance_hooks.append(hook)

    def wake(self) -> None:
        self._wake.set()

    def run_once(self) -> int:
        """Applies one batch to every view that is behind; returns view-events applied.

        Views at the same position (the usual case) share one read of the store and one
        transaction, so the tracking rows of all of them move together.
        """
        applied = 0
        groups: dict[int, list[View]] = {}
        positions = self.store.positions()
        for view in self.views:
            groups.setdefault(positions.get(view.name, 0), []).append(view)
        for start, views in groups.items():
            batch = self.source.read(start, self.batch_size)
            if not batch:
                continue
            try:
                self._apply(views, start, batch)
            except ProjectionMoved:
                continue
            applied += len(batch) * len(views)
        if applied:
            with self.advanced:
                self.advanced.notify_all()
            for hook in self._advance_hooks:
                hook()
        return applied

    def _apply(self, views: Sequence[View], start: int,
               batch: Sequence[tuple[int, Any]]) -> None:
        with self.store.transaction() as tx:
            for view in views:
                if tx.lock_position(view.name) != start:
                    raise ProjectionMoved
            for view in views:
                view.apply_batch(tx, batch)
                tx.set_position(view.name, batch[-1][0])

    def catch_up(self) -> int:
        total = 0
        while applied := self.run_once():
            total += applied
        return total

    def run(self, stop: threading.Event, poll_interval: float) -> None:
        """Follows the store until ``stop`` is set; survives errors with a backoff."""
        self.following = True
        try:
            self._follow(stop, poll_interval)
        finally:
            self.following = False

    def _follow(self, stop: threading.Event, poll_interval: float) -> None:
        backoff = poll_interval
        while not stop.is_set():
            try:
                applied = self.run_once()
                backoff = poll_interval
            except Exception:
                log.exception("projection batch failed; retrying")
                applied = 0
                backoff = min(backoff * 2, 1.0)  # a failover: back within a second
            if not applied:
                self._wake.wait(backoff)
                self._wake.clear()

    def lag(self) -> int:
        """How many positions the slowest view is behind the event store."""
        head = self.source.max_position()
        return max(0, head - min(self.store.positions().values(), default=0))

    def wait_for(self, position: int, timeout: float) -> bool:
        """Blocks until every view has applied ``position``; False on timeout."""
        return self.wait_until(
            lambda: all(p >= position for p in self.store.positions().values()), timeout)

    def wait_until(self, caught_up: Callable[[], bool], timeout: float) -> bool:
        """Blocks until ``caught_up()`` holds, helping or waking the projector; False on
        timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if caught_up():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if not self.following:
                # No projector thread in this process (a CLI command): project inline.
                self.run_once()
                continue
            self._wake.set()
            with self.advanced:
                self.advanced.wait(min(remaining, 0.01))
