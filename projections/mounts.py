"""Each tenant's mounts (``domain.mounts``) as the Vault façade lists them; part of the
current view, so that a mount enabled is seen by the very next request (read-your-
writes), and disabling one ends its secrets' rows in the same transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from secrets_ledger.domain import mounts
from secrets_ledger.projections.managed import ManagedRows
from secrets_ledger.projections.ports import Column, ViewWriter

MOUNT_TABLES = ("mounts",)
MOUNT_ORDER = {"mounts": "tenant_id, path"}
_COLUMNS: list[Column] = [
    ("tenant_id", "text"), ("path", "text"), ("mount_id", "text"), ("type", "text"),
    ("options", "text"), ("config", "text"), ("enabled_at", "text")]


@dataclass
class MountRows:
    """One batch's mount changes, in order (a path may be enabled, disabled and enabled
    again in one batch)."""

    statements: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def write(self, tx: ViewWriter, t: dict[str, str]) -> None:
        for sql, params in self.statements:
            tx.execute(sql.format(mounts=t["mounts"]), params)


def gather_mount(rows: MountRows, managed: ManagedRows, event: Any, tenant_id: str,
                 at: str) -> list[tuple[str, int]]:
    """Adds one mount event's rows; returns the (key, version)s it destroyed."""
    if isinstance(event, mounts.MountEnabled):
        rows.statements.append((
            "INSERT INTO {mounts} (tenant_id, path, mount_id, type, options, config,"
            " enabled_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (tenant_id, event.path, event.mount_id, event.type, json.dumps(event.options),
             json.dumps(mounts.DEFAULT_CONFIG), at)))
        return []
    if isinstance(event, mounts.MountConfigured):
        rows.statements.append(("UPDATE {mounts} SET config = %s WHERE tenant_id = %s"
                                " AND path = %s", (json.dumps(event.config), tenant_id,
                                                   event.path)))
        return []
    rows.statements.append(("DELETE FROM {mounts} WHERE tenant_id = %s AND path = %s",
                            (tenant_id, event.path)))
    for key in event.purged:
        managed.purge((tenant_id, key))
    return [(key, version) for key, versions in event.purged.items() for version in versions]


MOUNT_EVENTS = (mounts.MountEnabled, mounts.MountConfigured, mounts.MountDisabled)
