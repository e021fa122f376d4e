"""Requests repeated under their idempotency key get their first outcome and write nothing
more. The idempotency view holds every outcome; the writer also remembers the recent ones,
which closes the race between two identical requests that both missed the view before
either was saved (and spares the view a read for a client retrying at once)."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from uuid import UUID

from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.domain.errors import IdempotencyKeyReused

RECENT_IDEMPOTENCY_KEYS = 100_000
Key = tuple[UUID, str]  # (tenant id, idempotency key)
Outcome = tuple[str | None, dict[str, Any]]  # (request hash, outcome)
StoredOutcome = Callable[[UUID, RequestContext], dict[str, Any] | None]
"""Looks an idempotency key up in the views (comparing the request's hash)."""


class RecentOutcomes:
    """The outcomes of the batch being staged, and of recent batches (bounded)."""

    def __init__(self, stored: StoredOutcome, size: int = RECENT_IDEMPOTENCY_KEYS,
                 max_bytes: int = 32 * 1024 * 1024) -> None:
        self.stored = stored
        self.size = size
        self.max_bytes = max_bytes
        self.bytes = 0  # an estimate of what the recent outcomes hold
        self.batch: dict[Key, Outcome] = {}
        self._recent: OrderedDict[Key, tuple[Outcome, int]] = OrderedDict()

    def first_outcome(self, key: Key, ctx: RequestContext) -> dict[str, Any] | None:
        """The outcome of the request first made under ``key``, if any; the same key with
        another request is refused."""
        remembered = self.batch.get(key)
        if remembered is None and (recent := self._recent.get(key)) is not None:
            remembered = recent[0]
        if remembered is None:
            return self.stored(key[0], ctx)
        request_hash, outcome = remembered
        if request_hash != ctx.request_hash:
            raise IdempotencyKeyReused("this Idempotency-Key was used for another request")
        return outcome

    def settle(self) -> None:
        """The staged batch was saved: its outcomes join the recent ones, the oldest
        leaving once there are too many or they hold too many bytes."""
        for key, outcome in self.batch.items():
            size = _size_of(key, outcome)
            previous = self._recent.pop(key, None)
            if previous is not None:
                self.bytes -= previous[1]
            self._recent[key] = (outcome, size)
            self.bytes += size
        while self._recent and (len(self._recent) > self.size or self.bytes > self.max_bytes):
            self.bytes -= self._recent.popitem(last=False)[1][1]


def _size_of(key: Key, outcome: Outcome) -> int:
    """Bytes an entry holds, roughly: its JSON text and a fixed overhead for the objects."""
    return len(key[1]) + len(outcome[0] or "") + len(json.dumps(outcome[1], default=str)) + 400
