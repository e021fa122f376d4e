"""What a command returned, rebuilt from the event it recorded: the answer to a request
repeated with the same idempotency key (kept by the writer for recent requests, and in
the idempotency view for all)."""

from __future__ import annotations

from typing import Any

from secrets_ledger.domain.tenant import Tenant
from secrets_ledger.domain.times import format_time


def outcome_of(event: Any) -> dict[str, Any]:
    if isinstance(event, Tenant.SecretVersionsWritten):
        changes = [{"key": w["key"], "version": w["version"]} for w in event.writes]
        changes += [{"key": d["key"], "version": d["version"]} for d in event.deletions]
        return {"results": changes, "created_at": format_time(event.timestamp)}
    if isinstance(event, Tenant.TenantKeyRotated):
        return {"version": event.key_version, "created_at": format_time(event.timestamp)}
    return {"version": getattr(event, "version", None),
            "created_at": format_time(event.timestamp)}
