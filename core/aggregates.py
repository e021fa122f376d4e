"""The tenants' aggregates as the group-commit writer keeps them between batches.

In this process a cached aggregate is always fresh (only the writer thread changes it);
another process may have appended since, which the writer learns from a conflict on
save (then it drops the aggregate and reloads) or, for a refusal computed on a cached
aggregate, by fast-forwarding it before the refusal is reported.
"""

from __future__ import annotations

from collections import OrderedDict
from uuid import UUID

from secrets_ledger.core.ports import TenantStreams
from secrets_ledger.domain.tenant import Tenant

CACHE_SIZE = 2_000


class AggregateCache:
    def __init__(self, streams: TenantStreams, size: int = CACHE_SIZE) -> None:
        self.streams = streams
        self.size = size
        self._cache: OrderedDict[UUID, Tenant] = OrderedDict()

    def take(self, tenant_id: UUID) -> Tenant | None:
        """The aggregate (cached, else loaded; None without a stream), out of the cache
        until it is kept again."""
        cached = self._cache.pop(tenant_id, None)
        return cached if cached is not None else self.streams.load(tenant_id)

    def fast_forward(self, tenant: Tenant) -> bool:
        """Applies the events other processes appended; True if there were any."""
        newer = self.streams.newer_events(tenant)
        for event in newer:
            event.mutate(tenant)
        return bool(newer)

    def keep(self, tenant: Tenant) -> None:
        self._cache[tenant.id] = tenant
        self._cache.move_to_end(tenant.id)
        while len(self._cache) > self.size:
            self._cache.popitem(last=False)

    def drop(self, tenant_id: UUID) -> None:
        self._cache.pop(tenant_id, None)

    def clear(self) -> None:
        self._cache.clear()
