"""The current view: tenants, every secret version's ciphertext and metadata (never a
plaintext), the current version of each key, the key timeline for point-in-time reads,
and the idempotency records."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from secrets_ledger.domain import managed
from secrets_ledger.domain.managed_events import (
    ManagedDeletionScheduled,
    ManagedLabelsMoved,
    ManagedSecretPurged,
    ManagedSecretRestored,
    ManagedVersionsDestroyed,
    ManagedVersionWritten,
)
from secrets_ledger.domain.outcomes import outcome_of
from secrets_ledger.domain.tenant import Tenant, tenant_text
from secrets_ledger.domain.times import format_time
from secrets_ledger.projections.managed import (
    MANAGED_GATHERERS,
    MANAGED_ORDER,
    MANAGED_TABLES,
    ManagedRows,
)
from secrets_ledger.projections.mounts import (
    MOUNT_EVENTS,
    MOUNT_ORDER,
    MOUNT_TABLES,
    MountRows,
    gather_mount,
)
from secrets_ledger.projections.ports import Column, ViewWriter
from secrets_ledger.projections.view import View

VersionKey = tuple[str, str, int]


@dataclass
class _CurrentRows:
    """The rows one batch adds or changes, gathered in memory and written in bulk."""

    tenant_statements: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    versions: dict[VersionKey, list[Any]] = field(default_factory=dict)
    states: dict[VersionKey, str] = field(default_factory=dict)
    destroyed: dict[VersionKey, None] = field(default_factory=dict)
    shredded: list[str] = field(default_factory=list)
    current: dict[tuple[str, str], tuple[int, str, bool]] = field(default_factory=dict)
    timeline: list[tuple[Any, ...]] = field(default_factory=list)
    idempotency: list[tuple[Any, ...]] = field(default_factory=list)
    stream_versions: dict[str, int] = field(default_factory=dict)
    managed: ManagedRows = field(default_factory=ManagedRows)
    mounts: MountRows = field(default_factory=MountRows)

    def set_state(self, slot: VersionKey, state: str) -> None:
        row = self.versions.get(slot)
        if row is not None:
            if row[5] != "destroyed":
                row[5] = state
        elif slot not in self.destroyed:
            self.states[slot] = state

    def destroy(self, slot: VersionKey) -> None:
        row = self.versions.get(slot)
        if row is not None:
            row[5:8] = ["destroyed", None, None]
        else:
            self.states.pop(slot, None)
            self.destroyed[slot] = None

    def liveness(self, tenant_id: str, key: str, position: int, at: str, version: int,
                 live: bool) -> None:
        self.current[(tenant_id, key)] = (version, at, not live)
        self.timeline.append((tenant_id, key, position, at, version, live))


class CurrentSecretsView(View):
    """Tenants, every secret version's ciphertext and metadata, the current version of
    each key, the key timeline for point-in-time reads, and idempotency records."""

    name = "current"
    tables = ("tenants", "secret_versions", "current_secrets", "key_timeline",
              "idempotency_records", *MANAGED_TABLES, *MOUNT_TABLES)
    order_by: ClassVar[Mapping[str, str]] = {
        "tenants": "tenant",
        "secret_versions": "tenant_id, key, version",
        "current_secrets": "tenant_id, key",
        "key_timeline": "tenant_id, key, position",
        "idempotency_records": "tenant_id, idempotency_key",
        **MANAGED_ORDER,
        **MOUNT_ORDER,
    }
    append_only = frozenset({"key_timeline"})
    pruned = frozenset({"idempotency_records"})

    def rows_of(self, batch: Sequence[tuple[int, Any]]) -> _CurrentRows:
        rows = _CurrentRows()
        stream_versions = rows.stream_versions
        for position, event in batch:
            gather = _GATHERERS.get(type(event))
            if gather is None:
                if not isinstance(event, Tenant.Event):
                    continue
                gather = _gather_nothing
            tenant_id, at = tenant_text(event.originator_id), format_time(event.timestamp)
            stream_versions[tenant_id] = event.originator_version
            gather(self, rows, position, event, tenant_id, at)
            if event.idempotency_key is not None:
                rows.idempotency.append((tenant_id, event.idempotency_key, event.request_hash,
                                         position, json.dumps(outcome_of(event), sort_keys=True),
                                         at))
        return rows

    def write(self, tx: ViewWriter, rows: _CurrentRows) -> None:
        t = self.t
        for sql, params in rows.tenant_statements:
            tx.execute(sql, params)
        tx.update(t["tenants"], assign=[("version", "bigint")], keys=[("tenant_id", "text")],
                  rows=[(v, tenant_id) for tenant_id, v in rows.stream_versions.items()])
        tx.append(t["secret_versions"], _VERSION_COLUMNS, list(rows.versions.values()))
        tx.update(t["secret_versions"], assign=[("state", "text")], keys=_SLOT,
                  rows=[(state, *slot) for slot, state in rows.states.items()],
                  where="state <> 'destroyed'")
        tx.update(t["secret_versions"], assign=[], keys=_SLOT, rows=list(rows.destroyed),
                  fixed="state = 'destroyed', ciphertext = NULL, dek_id = NULL")
        for tenant_id in rows.shredded:
            tx.execute(
                f"UPDATE {t['secret_versions']} SET ciphertext = NULL, dek_id = NULL"
                " WHERE tenant_id = %s", (tenant_id,))
        tx.merge(t["current_secrets"], _CURRENT_COLUMNS,
                 [(*slot, *state) for slot, state in rows.current.items()],
                 "(tenant_id, key) DO UPDATE SET version = excluded.version,"
                 " updated_at = excluded.updated_at, deleted = excluded.deleted")
        tx.append(t["key_timeline"], _TIMELINE_COLUMNS, rows.timeline)
        tx.merge(t["idempotency_records"], _IDEMPOTENCY_COLUMNS, rows.idempotency, "DO NOTHING")
        rows.mounts.write(tx, t)
        rows.managed.write(tx, t)


Gatherer = Callable[[CurrentSecretsView, _CurrentRows, int, Any, str, str], None]
"""Adds one event's rows: (view, rows, position, event, tenant id, time as text)."""


def _gather_opened(view: CurrentSecretsView, rows: _CurrentRows, position: int, event: Any,
                   tenant_id: str, at: str) -> None:
    rows.tenant_statements.append((
        f"INSERT INTO {view.t['tenants']} (tenant, tenant_id, created_at, shredded_at,"
        " key_version) VALUES (%s, %s, %s, NULL, %s)",
        (event.name, tenant_id, at, event.key_version)))


def _gather_written(view: CurrentSecretsView, rows: _CurrentRows, position: int, event: Any,
                    tenant_id: str, at: str) -> None:
    versions, actor = rows.versions, event.actor
    for write in event.writes:
        metadata = write["metadata"]
        key, version = write["key"], write["version"]
        versions[(tenant_id, key, version)] = [
            tenant_id, key, version, at, actor, "active", write["ciphertext"], write["dek_id"],
            write["key_version"], None if metadata is None else json.dumps(metadata), position]
        rows.liveness(tenant_id, key, position, at, version, True)
    for deletion in event.deletions:
        key, version = deletion["key"], deletion["version"]
        rows.set_state((tenant_id, key, version), "deleted")
        rows.liveness(tenant_id, key, position, at, version, False)


def _gather_liveness(view: CurrentSecretsView, rows: _CurrentRows, position: int,
                     event: Any, tenant_id: str, at: str) -> None:
    live = isinstance(event, Tenant.SecretUndeleted)
    rows.set_state((tenant_id, event.key, event.version), "active" if live else "deleted")
    rows.liveness(tenant_id, event.key, position, at, event.version, live)


def _gather_destroyed(view: CurrentSecretsView, rows: _CurrentRows, position: int,
                      event: Any, tenant_id: str, at: str) -> None:
    for version in event.versions:
        rows.destroy((tenant_id, event.key, version))


def _gather_key_rotated(view: CurrentSecretsView, rows: _CurrentRows, position: int,
                        event: Any, tenant_id: str, at: str) -> None:
    rows.tenant_statements.append((
        f"UPDATE {view.t['tenants']} SET key_version = %s WHERE tenant_id = %s",
        (event.key_version, tenant_id)))


def _gather_shredded(view: CurrentSecretsView, rows: _CurrentRows, position: int,
                     event: Any, tenant_id: str, at: str) -> None:
    rows.tenant_statements.append((
        f"UPDATE {view.t['tenants']} SET shredded_at = %s WHERE tenant_id = %s",
        (at, tenant_id)))
    rows.shredded.append(tenant_id)


def _gather_moved(view: CurrentSecretsView, rows: _CurrentRows, position: int,
                  event: Any, tenant_id: str, at: str) -> None:
    """Out: the group it went to (every query here then says so); in: none any more."""
    rows.tenant_statements.append((
        f"UPDATE {view.t['tenants']} SET moved_to = %s WHERE tenant_id = %s",
        (getattr(event, "group", None), tenant_id)))


def _gather_managed(view: CurrentSecretsView, rows: _CurrentRows, position: int, event: Any,
                    tenant_id: str, at: str) -> None:
    """A managed secret's event: its own rows, and its versions and liveness in the
    tables it shares with native keys (the current version is the one labelled current)."""
    MANAGED_GATHERERS[type(event)](rows.managed, event, tenant_id, at)
    key = event.key
    if isinstance(event, ManagedVersionWritten):
        write = event.write
        version = write["version"]
        rows.versions[(tenant_id, key, version)] = [
            tenant_id, key, version, at, event.actor, "active", write["ciphertext"],
            write["dek_id"], write["key_version"], None, position]
    if isinstance(event, ManagedVersionWritten | ManagedLabelsMoved):
        current = event.labels.get(managed.CURRENT)
        if current is not None:
            rows.liveness(tenant_id, key, position, at, current, True)
    elif isinstance(event, ManagedSecretPurged | ManagedVersionsDestroyed):
        for version in event.versions:
            rows.destroy((tenant_id, key, version))
    if (isinstance(event, ManagedDeletionScheduled | ManagedSecretRestored
                   | ManagedSecretPurged) and event.current is not None):
        live = isinstance(event, ManagedSecretRestored)
        rows.liveness(tenant_id, key, position, at, event.current, live)


def _gather_mount(view: CurrentSecretsView, rows: _CurrentRows, position: int, event: Any,
                  tenant_id: str, at: str) -> None:
    for key, version in gather_mount(rows.mounts, rows.managed, event, tenant_id, at):
        rows.destroy((tenant_id, key, version))


def _gather_nothing(view: CurrentSecretsView, rows: _CurrentRows, position: int, event: Any,
                    tenant_id: str, at: str) -> None:
    """Token events: only the stream's version and the idempotency record."""


# By exact class (a dictionary lookup, not a chain of isinstance checks per event).
_GATHERERS: dict[type[Any], Gatherer] = {
    Tenant.Opened: _gather_opened,
    Tenant.SecretVersionsWritten: _gather_written,
    Tenant.SecretDeleted: _gather_liveness,
    Tenant.SecretUndeleted: _gather_liveness,
    Tenant.VersionsDestroyed: _gather_destroyed,
    Tenant.TenantKeyRotated: _gather_key_rotated,
    Tenant.Shredded: _gather_shredded,
    Tenant.MovedOut: _gather_moved,
    Tenant.MovedIn: _gather_moved,
    Tenant.TokenIssued: _gather_nothing,
    Tenant.TokenRevoked: _gather_nothing,
    **dict.fromkeys(MANAGED_GATHERERS, _gather_managed),
    **dict.fromkeys(MOUNT_EVENTS, _gather_mount),
}


_SLOT: list[Column] = [("tenant_id", "text"), ("key", "text"), ("version", "integer")]
_VERSION_COLUMNS: list[Column] = [
    *_SLOT, ("created_at", "text"), ("created_by", "text"), ("state", "text"),
    ("ciphertext", "text"), ("dek_id", "text"), ("key_version", "integer"),
    ("metadata", "text"), ("position", "bigint")]
_CURRENT_COLUMNS: list[Column] = [
    ("tenant_id", "text"), ("key", "text"), ("version", "integer"), ("updated_at", "text"),
    ("deleted", "boolean")]
_TIMELINE_COLUMNS: list[Column] = [
    ("tenant_id", "text"), ("key", "text"), ("position", "bigint"), ("at", "text"),
    ("version", "integer"), ("live", "boolean")]
_IDEMPOTENCY_COLUMNS: list[Column] = [
    ("tenant_id", "text"), ("idempotency_key", "text"), ("request_hash", "text"),
    ("position", "bigint"), ("result", "text"), ("created_at", "text")]
