"""The views projected from the tenant streams: ``CurrentSecretsView`` and ``AuditTrail``.

A view turns one domain event into rows, inside a transaction the projector opens and
in which it also advances the view's tracking position. Table names are parameters so
that replay can build the same view into fresh tables and swap them in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from domain.reads import ValueRead
from domain.tenant import Tenant
from service.clock import format_time
from service.database import Cursor

AUDIT_SLOTS = 65_536
"""Audit positions are ``notification id * AUDIT_SLOTS + n``: one event may hold many changes."""


class View:
    name: ClassVar[str]
    tables: ClassVar[tuple[str, ...]]
    # Columns that order each table's rows for the checksum (its primary key).
    order_by: ClassVar[Mapping[str, str]]

    def __init__(self, suffix: str = "") -> None:
        self.suffix = suffix
        self.t = {table: table + suffix for table in self.tables}

    def apply(self, cur: Cursor, position: int, event: Any) -> None:
        """Writes the rows one event contributes; events of other kinds are ignored."""
        raise NotImplementedError


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

    def apply(self, cur: Cursor, position: int, event: Any) -> None:
        if not isinstance(event, Tenant.Event):
            return
        tenant_id = str(event.originator_id)
        at = format_time(event.timestamp)
        t = self.t
        if isinstance(event, Tenant.Opened):
            cur.execute(
                f"INSERT INTO {t['tenants']} (tenant, tenant_id, created_at, shredded_at,"
                " key_version) VALUES (%s, %s, %s, NULL, %s)",
                (event.name, tenant_id, at, event.key_version),
            )
        elif isinstance(event, Tenant.SecretVersionsWritten):
            for write in event.writes:
                self._write_version(cur, tenant_id, position, at, event.actor, write)
            for deletion in event.deletions:
                self._mark_deleted(cur, tenant_id, position, at, deletion["key"],
                                   deletion["version"])
        elif isinstance(event, Tenant.SecretDeleted):
            self._mark_deleted(cur, tenant_id, position, at, event.key, event.version)
        elif isinstance(event, Tenant.SecretUndeleted):
            self._set_state(cur, tenant_id, event.key, event.version, "active")
            cur.execute(
                f"UPDATE {t['current_secrets']} SET deleted = %s, updated_at = %s"
                " WHERE tenant_id = %s AND key = %s",
                (False, at, tenant_id, event.key),
            )
            self._timeline(cur, tenant_id, event.key, position, at, event.version, True)
        elif isinstance(event, Tenant.VersionsDestroyed):
            cur.executemany(
                f"UPDATE {t['secret_versions']} SET state = 'destroyed', ciphertext = NULL,"
                " dek_id = NULL WHERE tenant_id = %s AND key = %s AND version = %s",
                [(tenant_id, event.key, version) for version in event.versions],
            )
        elif isinstance(event, Tenant.TenantKeyRotated):
            cur.execute(
                f"UPDATE {t['tenants']} SET key_version = %s WHERE tenant_id = %s",
                (event.key_version, tenant_id),
            )
        elif isinstance(event, Tenant.Shredded):
            cur.execute(
                f"UPDATE {t['tenants']} SET shredded_at = %s WHERE tenant_id = %s",
                (at, tenant_id),
            )
            cur.execute(
                f"UPDATE {t['secret_versions']} SET ciphertext = NULL, dek_id = NULL"
                " WHERE tenant_id = %s",
                (tenant_id,),
            )
        if event.idempotency_key is not None:
            cur.execute(
                f"INSERT INTO {t['idempotency_records']} (tenant_id, idempotency_key,"
                " request_hash, position, result, created_at) VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT DO NOTHING",
                (tenant_id, event.idempotency_key, event.request_hash, position,
                 json.dumps(outcome_of(event), sort_keys=True), at),
            )

    def _write_version(self, cur: Cursor, tenant_id: str, position: int, at: str,
                       actor: str, write: Mapping[str, Any]) -> None:
        t = self.t
        metadata = None if write["metadata"] is None else json.dumps(write["metadata"])
        cur.execute(
            f"INSERT INTO {t['secret_versions']} (tenant_id, key, version, created_at,"
            " created_by, state, ciphertext, dek_id, key_version, metadata, position)"
            " VALUES (%s, %s, %s, %s, %s, 'active', %s, %s, %s, %s, %s)",
            (tenant_id, write["key"], write["version"], at, actor, write["ciphertext"],
             write["dek_id"], write["key_version"], metadata, position),
        )
        cur.execute(
            f"INSERT INTO {t['current_secrets']} (tenant_id, key, version, updated_at, deleted)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (tenant_id, key) DO UPDATE"
            " SET version = excluded.version, updated_at = excluded.updated_at,"
            " deleted = excluded.deleted",
            (tenant_id, write["key"], write["version"], at, False),
        )
        self._timeline(cur, tenant_id, write["key"], position, at, write["version"], True)

    def _mark_deleted(self, cur: Cursor, tenant_id: str, position: int, at: str, key: str,
                      version: int) -> None:
        self._set_state(cur, tenant_id, key, version, "deleted")
        cur.execute(
            f"UPDATE {self.t['current_secrets']} SET deleted = %s, updated_at = %s"
            " WHERE tenant_id = %s AND key = %s",
            (True, at, tenant_id, key),
        )
        self._timeline(cur, tenant_id, key, position, at, version, False)

    def _set_state(self, cur: Cursor, tenant_id: str, key: str, version: int,
                   state: str) -> None:
        cur.execute(
            f"UPDATE {self.t['secret_versions']} SET state = %s"
            " WHERE tenant_id = %s AND key = %s AND version = %s AND state <> 'destroyed'",
            (state, tenant_id, key, version),
        )

    def _timeline(self, cur: Cursor, tenant_id: str, key: str, position: int, at: str,
                  version: int, live: bool) -> None:
        cur.execute(
            f"INSERT INTO {self.t['key_timeline']} (tenant_id, key, position, at, version, live)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (tenant_id, key, position, at, version, live),
        )


def outcome_of(event: Any) -> dict[str, Any]:
    """What a command returned, rebuilt from its event (the answer to a repeated request)."""
    if isinstance(event, Tenant.SecretVersionsWritten):
        changes = [{"key": w["key"], "version": w["version"]} for w in event.writes]
        changes += [{"key": d["key"], "version": d["version"]} for d in event.deletions]
        return {"results": changes, "created_at": format_time(event.timestamp)}
    return {"version": getattr(event, "version", None),
            "created_at": format_time(event.timestamp)}


class AuditTrail(View):
    """One row per change and per value read, in the order the event store recorded them."""

    name = "audit"
    tables = ("audit_trail",)
    order_by: ClassVar[Mapping[str, str]] = {"audit_trail": "tenant_id, position"}

    def apply(self, cur: Cursor, position: int, event: Any) -> None:
        if isinstance(event, ValueRead.Recorded):
            tenant_id = event.tenant_id
        elif isinstance(event, Tenant.Event):
            tenant_id = str(event.originator_id)
        else:
            return
        rows = [
            (tenant_id, position * AUDIT_SLOTS + n, format_time(event.timestamp),
             action, key, version, event.actor, event.request_id)
            for n, (action, key, version) in enumerate(changes_of(event))
        ]
        cur.executemany(
            f"INSERT INTO {self.t['audit_trail']} (tenant_id, position, at, action, key,"
            " version, actor, request_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )


def changes_of(event: Any) -> list[tuple[str, str | None, int | None]]:
    """(action, key, version) for each change an event made, as the audit trail names it."""
    if isinstance(event, ValueRead.Recorded):
        return [("read", event.key, event.version)]
    if isinstance(event, Tenant.Opened):
        return [("tenant_opened", None, None)]
    if isinstance(event, Tenant.SecretVersionsWritten):
        return [
            ("rollback" if w["rollback_of"] is not None else "write", w["key"], w["version"])
            for w in event.writes
        ] + [("delete", d["key"], d["version"]) for d in event.deletions]
    if isinstance(event, Tenant.SecretDeleted):
        return [("delete", event.key, event.version)]
    if isinstance(event, Tenant.SecretUndeleted):
        return [("undelete", event.key, event.version)]
    if isinstance(event, Tenant.VersionsDestroyed):
        return [("destroy", event.key, version) for version in event.versions]
    if isinstance(event, Tenant.TenantKeyRotated):
        return [("key_rotated", None, None)]
    if isinstance(event, Tenant.TokenIssued):
        return [("token_created", None, None)]
    if isinstance(event, Tenant.TokenRevoked):
        return [("token_revoked", None, None)]
    if isinstance(event, Tenant.Shredded):
        return [("shredded", None, None)]
    return []


ALL_VIEWS: tuple[type[View], ...] = (CurrentSecretsView, AuditTrail)


def views_named(name: str) -> list[type[View]]:
    if name == "all":
        return list(ALL_VIEWS)
    matches = [view for view in ALL_VIEWS if view.name == name]
    if not matches:
        raise ValueError(f"unknown view {name!r}: choose current, audit or all")
    return matches
