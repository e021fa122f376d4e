"""The audit trail: one row per change and per value read, in the order the event store
recorded them; never a value."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from secrets_ledger.domain import managed, managed_events, mounts
from secrets_ledger.domain.reads import MovedReads, ValueRead, ValueReads
from secrets_ledger.domain.tenant import Tenant, tenant_text
from secrets_ledger.domain.times import format_time
from secrets_ledger.projections.ports import Column, ViewWriter
from secrets_ledger.projections.view import View

AUDIT_SLOTS = 65_536
"""Audit positions are ``notification id * AUDIT_SLOTS + n``: one event may hold many changes."""

_AUDIT_COLUMNS: list[Column] = [
    ("tenant_id", "text"), ("position", "bigint"), ("at", "text"), ("action", "text"),
    ("key", "text"), ("version", "integer"), ("actor", "text"), ("request_id", "text"),
    ("record_version", "bigint")]

class AuditTrail(View):
    """One row per change and per value read, in the order the event store recorded them."""

    name = "audit"
    tables = ("audit_trail",)
    order_by: ClassVar[Mapping[str, str]] = {"audit_trail": "tenant_id, position"}
    append_only = frozenset({"audit_trail"})

    def rows_of(self, batch: Sequence[tuple[int, Any]]) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        add = rows.append
        for position, event in batch:
            slot = position * AUDIT_SLOTS
            if type(event) in BATCHED_READS:  # reads of many tenants (or a moved one's)
                at = format_time(event.timestamp)
                for n, read in enumerate(event.reads):
                    add((read["tenant_id"], slot + n, at, "read", read["key"], read["version"],
                         read["actor"], read["request_id"], None))
                continue
            changes = changes_of(event)
            if not changes:
                continue
            if type(event) is ValueRead.Recorded:
                tenant_id, record_version = str(event.tenant_id), None
            else:  # a change: its record is the tenant stream's version (a log leaf)
                tenant_id, record_version = (tenant_text(event.originator_id),
                                             event.originator_version)
            at, actor, request_id = format_time(event.timestamp), event.actor, event.request_id
            for n, (action, key, version) in enumerate(changes):
                add((tenant_id, slot + n, at, action, key, version, actor, request_id,
                     record_version))
        return rows

    def write(self, tx: ViewWriter, rows: list[tuple[Any, ...]]) -> None:
        tx.append(self.t["audit_trail"], _AUDIT_COLUMNS, rows)


Change = tuple[str, str | None, int | None]


def _written_changes(event: Any) -> list[Change]:
    changes: list[Change] = [
        ("rollback" if w["rollback_of"] is not None else "write", w["key"], w["version"])
        for w in event.writes]
    if event.deletions:
        changes += [("delete", d["key"], d["version"]) for d in event.deletions]
    return changes


def _purged_changes(event: Any) -> list[Change]:
    return [("destroy", event.key, v) for v in event.versions] or [("destroy", event.key, None)]


BATCHED_READS = (ValueReads.Recorded, MovedReads.Copied)
# (action, key, version) for each change, by exact event class.
_CHANGES: dict[type[Any], Callable[[Any], list[Change]]] = {
    ValueRead.Recorded: lambda e: [("read", e.key, e.version)],
    Tenant.Opened: lambda e: [("tenant_opened", None, None)],
    Tenant.SecretVersionsWritten: _written_changes,
    Tenant.SecretDeleted: lambda e: [("delete", e.key, e.version)],
    Tenant.SecretUndeleted: lambda e: [("undelete", e.key, e.version)],
    Tenant.VersionsDestroyed: lambda e: [("destroy", e.key, v) for v in e.versions],
    Tenant.TenantKeyRotated: lambda e: [("key_rotated", None, None)],
    Tenant.TokenIssued: lambda e: [("token_created", None, None)],
    Tenant.TokenRevoked: lambda e: [("token_revoked", None, None)],
    Tenant.Shredded: lambda e: [("shredded", None, None)],
    Tenant.MovedOut: lambda e: [("moved_out", None, None)],
    Tenant.MovedIn: lambda e: [("moved_in", None, None)],
    managed_events.ManagedSecretCreated: lambda e: [("metadata_updated", e.key, None)],
    managed_events.ManagedSecretUpdated: lambda e: [("metadata_updated", e.key, None)],
    managed_events.ManagedVersionWritten: lambda e: [("write", e.key, e.write["version"])],
    managed_events.ManagedLabelsMoved: lambda e: [
        ("labels_moved", e.key, e.labels.get(managed.CURRENT))],
    managed_events.ManagedDeletionScheduled: lambda e: [("delete", e.key, e.current)],
    managed_events.ManagedSecretRestored: lambda e: [("undelete", e.key, e.current)],
    managed_events.ManagedSecretPurged: _purged_changes,
    managed_events.ManagedVersionsDeleted: lambda e: [("delete", e.key, v) for v in e.versions],
    managed_events.ManagedVersionsUndeleted: lambda e: [
        ("undelete", e.key, v) for v in e.versions],
    managed_events.ManagedVersionsDestroyed: lambda e: [
        ("destroy", e.key, v) for v in e.versions],
    managed_events.ManagedSettingsChanged: lambda e: [("metadata_updated", e.key, None)],
    mounts.MountEnabled: lambda e: [("mount_enabled", None, None)],
    mounts.MountConfigured: lambda e: [("mount_configured", None, None)],
    mounts.MountDisabled: lambda e: [
        *(("destroy", key, v) for key, versions in e.purged.items() for v in versions),
        ("mount_disabled", None, None)],
}


def changes_of(event: Any) -> list[Change]:
    """(action, key, version) for each change an event made, as the audit trail names it."""
    changes = _CHANGES.get(type(event))
    return [] if changes is None else changes(event)
