"""A tenant's stream id, derived from its name (the same in every process and group)."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from uuid import NAMESPACE_URL, UUID, uuid5

tenant_text: Callable[[UUID], str] = lru_cache(maxsize=1 << 16)(str)
"""A tenant id as text (cached: views and the logs' fold format every event's stream id)."""


@lru_cache(maxsize=4096)
def tenant_id_for(name: str) -> UUID:
    # Cached: every command and query derives it (a SHA-1 and a UUID, ~5 µs), often twice.
    return uuid5(NAMESPACE_URL, f"/secrets-ledger/tenants/{name}")
