"""What a front end tells the core about a request, besides who sent it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from secrets_ledger.core.principals import Principal
from secrets_ledger.domain.changes import RequestContext


@dataclass(frozen=True)
class RequestInfo:
    """The request's id (recorded with every event and read it causes) and, for a request
    that may be repeated, its idempotency key and a hash of everything the client sent
    (how the front end hashes is its own business: the same request, the same hash)."""

    request_id: str
    idempotency_key: str | None = None
    request_hash: str | None = None
    size: int = 0  # bytes the client sent: what its queued work may hold in memory
    # Whether the client has gone (closed its connection): its work is then not started.
    client_gone: Callable[[], bool] | None = field(default=None, compare=False)

    def context(self, principal: Principal) -> RequestContext:
        """The domain's context: this request, acted on by ``principal``."""
        return RequestContext(principal.token_id, self.request_id, self.idempotency_key,
                              self.request_hash)
