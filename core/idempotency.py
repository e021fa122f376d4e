"""Requests repeated under their idempotency key get their first outcome and write nothing
more. The idempotency view holds every outcome; the writer also remembers the recent ones,
which closes the race between two identical requests that both missed the view before
either was saved (and spares the view a read for a client retrying at once)."""

from __future__ import annotations

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

    def __init__(self, stored: StoredOutcome, size: int = RECENT_IDEMPOTENCY_KEYS) -> None:
        self.stored = stored
        self.size = size
        self.batch: dict[Key, Outcome] = {}
        self._recent: OrderedDict[Key, Outcome] = OrderedDict()

    def first_outcome(self, key: Key, ctx: RequestContext) -> dict[str, Any] | None:
        """The outcome of the request first made under ``key``, if any; the same key with
        another request is refused."""
        remembered = self.batch.get(key) or self._recent.get(key)
        if remembered is None:
            return self.stored(key[0], ctx)
        request_hash, outcome = remembered
        if request_hash != ctx.request_hash:
            raise IdempotencyKeyReused("this Idempotency-Key was used for another request")
        return outcome

    def settle(self) -> None:
        """The staged batch was saved: its outcomes join the recent ones."""
        self._recent.update(self.batch)
        while len(self._recent) > self.size:
            self._recent.popitem(last=False)
