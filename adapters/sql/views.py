"""The views as the core's queries read them (``ports.ViewQueries``).

Keys are listed in byte order on both backends: the one difference, how a backend is
told to compare by bytes, is given by its adapter (``key_order``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Concatenate, ParamSpec, TypeVar

from secrets_ledger.adapters.sql.database import Database, fetch_all, fetch_one
from secrets_ledger.core.ports import (
    AuditFilter,
    AuditRow,
    ManagedRow,
    ManagedVersion,
    MountRow,
)

NATIVE = "key NOT LIKE '%%:%%'"
"""Native keys only: a managed secret's key is ``<space>:<name>`` (``domain.managed``),
and no native key has a ``:``."""


P = ParamSpec("P")
R = TypeVar("R")


def _shown(query: Callable[Concatenate[SqlViewQueries, P], R]
           ) -> Callable[Concatenate[SqlViewQueries, P], R]:
    """A query whose rows a caller is shown: asked once the views it reads are caught up
    (``caught_up``), answered once every commit it could have seen is as safe as an
    acknowledged write (``durable``)."""
    def shown(self: SqlViewQueries, /, *args: P.args, **kwargs: P.kwargs) -> R:
        self.caught_up()
        rows = query(self, *args, **kwargs)
        self.durable()
        return rows
    return shown


class SqlViewQueries:
    def __init__(self, db: Database, key_order: str,
                 durable: Callable[[], None] = lambda: None) -> None:
        """``durable``: returns once every commit the store shows is as safe as an
        acknowledged one (on PostgreSQL with a synchronous standby: on the standby too).
        A commit whose wait for the standby was cut short is shown by its server at once;
        a listing must not show what a failover could take back (README "Deployments")."""
        self.db = db
        self.tracking = db  # where the core's read-your-writes wait polls the views
        self.key = key_order  # the key column, compared by bytes
        self.durable = durable

    def caught_up(self) -> None:
        """Returns once the views read here hold every commit made before the call (they
        do, but on a standby: ``adapters.postgres.standby``)."""

    # Not ``_shown``: read-your-writes polls it; the query it waits for is shown.
    def tenant_state(self, tenant_id: str) -> tuple[str | None, int, str | None] | None:
        row = fetch_one(self.tracking, "SELECT shredded_at, version, moved_to FROM tenants"
                                       " WHERE tenant_id = %s", (tenant_id,))
        return None if row is None else (row[0], int(row[1]), row[2])

    @_shown
    def tenants(self) -> list[tuple[str, str, str | None]]:
        rows = fetch_all(self.db, "SELECT tenant, created_at, shredded_at FROM tenants"
                                  " ORDER BY tenant")
        return [(str(t), str(c), s) for t, c, s in rows]

    @_shown
    def idempotency_record(self, tenant_id: str, key: str) -> tuple[str | None, str] | None:
        row = fetch_one(self.db, "SELECT request_hash, result FROM idempotency_records"
                                 " WHERE tenant_id = %s AND idempotency_key = %s",
                        (tenant_id, key))
        return None if row is None else (row[0], str(row[1]))

    @_shown
    def key_state(self, tenant_id: str, key: str) -> tuple[int, bool] | None:
        row = fetch_one(self.db, "SELECT version, deleted FROM current_secrets"
                                 " WHERE tenant_id = %s AND key = %s", (tenant_id, key))
        return None if row is None else (int(row[0]), bool(row[1]))

    @_shown
    def version_position(self, tenant_id: str, key: str, version: int) -> int | None:
        row = fetch_one(self.db, "SELECT position FROM secret_versions"
                                 " WHERE tenant_id = %s AND key = %s AND version = %s",
                        (tenant_id, key, version))
        return None if row is None else int(row[0])

    @_shown
    def version_row(self, tenant_id: str, key: str, version: int
                    ) -> tuple[str | None, str | None, str | None] | None:
        row = fetch_one(self.db, "SELECT ciphertext, dek_id, metadata FROM secret_versions"
                                 " WHERE tenant_id = %s AND key = %s AND version = %s",
                        (tenant_id, key, version))
        return None if row is None else (row[0], row[1], row[2])

    @_shown
    def data_key_ids(self, tenant_id: str, key: str) -> dict[int, str | None]:
        rows = fetch_all(self.db, "SELECT version, dek_id FROM secret_versions"
                                  " WHERE tenant_id = %s AND key = %s", (tenant_id, key))
        return {int(version): dek for version, dek in rows}

    @_shown
    def current_versions(self, tenant_id: str) -> dict[str, int]:
        rows = fetch_all(self.db, "SELECT key, version FROM current_secrets"
                                  f" WHERE tenant_id = %s AND NOT deleted AND {NATIVE}",
                         (tenant_id,))
        return {str(key): int(version) for key, version in rows}

    @_shown
    def versions(self, tenant_id: str, key: str) -> list[tuple[int, str, str, str]]:
        rows = fetch_all(self.db, "SELECT version, created_at, created_by, state"
                                  " FROM secret_versions WHERE tenant_id = %s AND key = %s"
                                  " ORDER BY version", (tenant_id, key))
        return [(int(v), str(c), str(b), str(s)) for v, c, b, s in rows]

    @_shown
    def keys_page(self, tenant_id: str, prefix: str, after: str, limit: int,
                  at: str | None) -> list[tuple[str, int, str]]:
        key = self.key
        if at is None:
            sql = ("SELECT key, version, updated_at FROM current_secrets"
                   f" WHERE tenant_id = %s AND NOT deleted AND {NATIVE}"
                   " AND substr(key, 1, %s) = %s"
                   f" AND {key} > %s ORDER BY {key} LIMIT %s")
            params: tuple[Any, ...] = (tenant_id, len(prefix), prefix, after, limit)
        else:
            sql = ("SELECT k.key, k.version, k.at FROM key_timeline k"
                   f" WHERE k.tenant_id = %s AND k.{NATIVE} AND substr(k.key, 1, %s) = %s"
                   f" AND k.{key} > %s AND k.live AND k.position = (SELECT MAX(position)"
                   " FROM key_timeline l WHERE l.tenant_id = k.tenant_id AND l.key = k.key"
                   f" AND l.at <= %s) ORDER BY k.{key} LIMIT %s")
            params = (tenant_id, len(prefix), prefix, after, at, limit)
        return [(str(k), int(v), str(u)) for k, v, u in fetch_all(self.db, sql, params)]

    @_shown
    def audit_page(self, tenant_id: str, where: AuditFilter, after: int,
                   limit: int) -> list[AuditRow]:
        clauses, params = ["tenant_id = %s", "position > %s"], [tenant_id, after]
        for column, value, operator in (("key", where.key, "="), ("actor", where.actor, "="),
                                        ("action", where.action, "="),
                                        ("at", where.since, ">="), ("at", where.until, "<")):
            if value is not None:
                clauses.append(f"{column} {operator} %s")
                params.append(value)
        rows = fetch_all(self.db, "SELECT position, at, action, key, version, actor, request_id"
                                  f" FROM audit_trail WHERE {' AND '.join(clauses)}"
                                  " ORDER BY position LIMIT %s", (*params, limit))
        return [AuditRow(int(p), str(a), str(ac), k, v, str(who), str(r))
                for p, a, ac, k, v, who, r in rows]

    @_shown
    def expired_managed(self, now: str) -> list[tuple[str, str]]:
        rows = fetch_all(self.db, "SELECT t.tenant, m.key FROM managed_secrets m JOIN tenants t"
                                  " ON t.tenant_id = m.tenant_id WHERE m.purge_after <= %s"
                                  " AND t.shredded_at IS NULL AND t.moved_to IS NULL"
                                  " ORDER BY t.tenant, m.key",
                         (now,))
        return [(str(tenant), str(key)) for tenant, key in rows]

    @_shown
    def managed_secrets(self, tenant_id: str, space: str, names: Sequence[str] | None = None
                        ) -> list[ManagedRow]:
        where, params = "tenant_id = %s AND space = %s", [tenant_id, space]
        if names is not None:
            if not names:
                return []
            where += f" AND name IN ({', '.join(['%s'] * len(names))})"
            params += names
        rows = fetch_all(self.db, "SELECT key, name, suffix, created_at, changed_at,"
                                  " description, kms_key_id, tags, labels, deleted_at,"
                                  " purge_after, base, settings FROM managed_secrets"
                                  f" WHERE {where} ORDER BY created_at, key", params)
        if not rows:
            return []
        keys = [row[0] for row in rows]
        marks = ", ".join(["%s"] * len(keys))
        versions: dict[str, list[ManagedVersion]] = {key: [] for key in keys}
        bases = {row[0]: int(row[11]) for row in rows}
        for key, version, client_id, created_at, state, deleted_at in fetch_all(
                self.db, "SELECT m.key, m.version, m.client_id, m.created_at, v.state,"
                         " m.deleted_at FROM managed_versions m JOIN secret_versions v"
                         " ON v.tenant_id = m.tenant_id AND v.key = m.key"
                         " AND v.version = m.version"
                         f" WHERE m.tenant_id = %s AND m.key IN ({marks})"
                         " ORDER BY m.key, m.version", [tenant_id, *keys]):
            if int(version) > bases[key]:
                versions[key].append(ManagedVersion(int(version), str(client_id),
                                                    str(created_at), str(state), deleted_at))
        return [ManagedRow(str(k), str(n), str(s), str(c), str(ch), d, kms, json.loads(t),
                           json.loads(lb), da, pa, versions[k], int(b),
                           json.loads(st) if st else {})
                for k, n, s, c, ch, d, kms, t, lb, da, pa, b, st in rows]

    @_shown
    def mounts(self, tenant_id: str) -> list[MountRow]:
        rows = fetch_all(self.db, "SELECT path, mount_id, type, options, config, enabled_at"
                                  " FROM mounts WHERE tenant_id = %s ORDER BY path",
                         (tenant_id,))
        return [MountRow(str(p), str(m), str(t), json.loads(o), json.loads(c), str(e))
                for p, m, t, o, c, e in rows]
