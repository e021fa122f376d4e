"""The tamper-evident chain: each event carries the hash of the event before it.

A link hashes the event's type, stream position, time and every stored field (which
hold ciphertext and metadata only, never plaintext) together with the previous link,
so that editing, removing or reordering one stored event breaks the chain there.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

GENESIS = "0" * 64

# json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False), built once
# (json.dumps builds a new encoder on every call with non-default options).
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)

# Fields the library sets on every event; identity and time are hashed explicitly.
_FRAMING_FIELDS = frozenset(
    {"hash", "originator_id", "originator_version", "timestamp", "originator_topic"}
)


def link_hash(
    tenant_id: UUID,
    version: int,
    event_type: str,
    at: datetime,
    fields: Mapping[str, Any],
) -> str:
    body = {
        "tenant_id": str(tenant_id),
        "version": version,
        "type": event_type,
        "at": at.isoformat(),
        "fields": {k: v for k, v in fields.items() if k not in _FRAMING_FIELDS},
    }
    canonical = _CANONICAL.encode(body)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def recompute_hash(event: Any) -> str:
    """The hash an event should carry, recomputed from what was stored."""
    return link_hash(
        event.originator_id,
        event.originator_version,
        type(event).__qualname__,
        event.timestamp,
        vars(event),
    )
