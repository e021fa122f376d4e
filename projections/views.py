"""The views projected from the tenant streams: ``CurrentSecretsView`` and ``AuditTrail``.

A view turns a batch of domain events into rows, inside a transaction the projector
opens and in which it also advances the view's tracking position. Table names are parameters so
that replay can build the same view into fresh tables and swap them in.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, ClassVar
from uuid import UUID

from secrets_ledger.domain.outcomes import outcome_of
from secrets_ledger.domain.reads import ValueRead, ValueReads
from secrets_ledger.domain.tenant import Tenant
from secrets_ledger.domain.times import format_time
from secrets_ledger.projections.ports import Column, ViewWriter

AUDIT_SLOTS = 65_536
"""Audit positions are ``notification id * AUDIT_SLOTS + n``: one event may hold many changes."""


class View(ABC):
    name: ClassVar[str]
    tables: ClassVar[tuple[str, ...]]
    # Columns that order each table's rows for the checksum (its primary key).
    order_by: ClassVar[Mapping[str, str]]
    # Tables a rebuild only appends to: replay may build their indexes after loading.
    append_only: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, suffix: str = "") -> None:
        self.suffix = suffix
        self.t = {table: table + suffix for table in self.tables}

    def apply_batch(self, tx: ViewWriter, batch: Sequence[tuple[int, Any]]) -> None:
        """Writes the rows a batch of (position, event) contributes, in as few statements
        as it can; the result is the same however the events are cut into batches."""
        self.write(tx, self.rows_of(batch))

    @abstractmethod
    def rows_of(self, batch: Sequence[tuple[int, Any]]) -> Any:
        """The rows a batch contributes, in memory (no I/O: replay builds the next
        batch's rows while the last ones are written)."""

    @abstractmethod
    def write(self, tx: ViewWriter, rows: Any) -> None:
        """Writes ``rows_of``'s rows, in as few statements as it can."""


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
              "idempotency_records")
    order_by: ClassVar[Mapping[str, str]] = {
        "tenants": "tenant",
        "secret_versions": "tenant_id, key, version",
        "current_secrets": "tenant_id, key",
        "key_timeline": "tenant_id, key, position",
        "idempotency_records": "tenant_id, idempotency_key",
    }
    append_only = frozenset({"key_timeline"})

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
    Tenant.TokenIssued: _gather_nothing,
    Tenant.TokenRevoked: _gather_nothing,
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
_AUDIT_COLUMNS: list[Column] = [
    ("tenant_id", "text"), ("position", "bigint"), ("at", "text"), ("action", "text"),
    ("key", "text"), ("version", "integer"), ("actor", "text"), ("request_id", "text")]


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
            if type(event) is ValueReads.Recorded:  # a batch of reads, from many tenants
                at = format_time(event.timestamp)
                for n, read in enumerate(event.reads):
                    add((read["tenant_id"], slot + n, at, "read", read["key"], read["version"],
                         read["actor"], read["request_id"]))
                continue
            changes = changes_of(event)
            if not changes:
                continue
            tenant_id = (str(event.tenant_id) if type(event) is ValueRead.Recorded
                         else tenant_text(event.originator_id))
            at, actor, request_id = format_time(event.timestamp), event.actor, event.request_id
            for n, (action, key, version) in enumerate(changes):
                add((tenant_id, slot + n, at, action, key, version, actor, request_id))
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
}


def changes_of(event: Any) -> list[Change]:
    """(action, key, version) for each change an event made, as the audit trail names it."""
    changes = _CHANGES.get(type(event))
    return [] if changes is None else changes(event)


tenant_text: Callable[[UUID], str] = lru_cache(maxsize=1 << 16)(str)
"""A tenant id as the views store it (cached: every event of a batch formats its
stream's id, in each view)."""


ALL_VIEWS: tuple[type[View], ...] = (CurrentSecretsView, AuditTrail)


def views_named(name: str) -> list[type[View]]:
    if name == "all":
        return list(ALL_VIEWS)
    matches = [view for view in ALL_VIEWS if view.name == name]
    if not matches:
        raise ValueError(f"unknown view {name!r}: choose current, audit or all")
    return matches
