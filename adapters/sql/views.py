"""The views as the core's queries read them (``ports.ViewQueries``).

Keys are listed in byte order on both backends: the one difference, how a backend is
told to compare by bytes, is given by its adapter (``key_order``).
"""

from __future__ import annotations

from typing import Any

from secrets_ledger.adapters.sql.database import Database, fetch_all, fetch_one
from secrets_ledger.core.ports import AuditFilter, AuditRow


class SqlViewQueries:
    def __init__(self, db: Database, key_order: str) -> None:
        self.db = db
        self.key = key_order  # the key column, compared by bytes

    def tenant_state(self, tenant_id: str) -> tuple[str | None, int] | None:
        row = fetch_one(self.db, "SELECT shredded_at, version FROM tenants WHERE tenant_id = %s",
                        (tenant_id,))
        return None if row is None else (row[0], int(row[1]))

    def tenants(self) -> list[tuple[str, str, str | None]]:
        rows = fetch_all(self.db, "SELECT tenant, created_at, shredded_at FROM tenants"
                                  " ORDER BY tenant")
        return [(str(t), str(c), s) for t, c, s in rows]

    def idempotency_record(self, tenant_id: str, key: str) -> tuple[str | None, str] | None:
        row = fetch_one(self.db, "SELECT request_hash, result FROM idempotency_records"
                                 " WHERE tenant_id = %s AND idempotency_key = %s",
                        (tenant_id, key))
        return None if row is None else (row[0], str(row[1]))

    def key_state(self, tenant_id: str, key: str) -> tuple[int, bool] | None:
        row = fetch_one(self.db, "SELECT version, deleted FROM current_secrets"
                                 " WHERE tenant_id = %s AND key = %s", (tenant_id, key))
        return None if row is None else (int(row[0]), bool(row[1]))

    def version_row(self, tenant_id: str, key: str, version: int
                    ) -> tuple[str | None, str | None, str | None] | None:
        row = fetch_one(self.db, "SELECT ciphertext, dek_id, metadata FROM secret_versions"
                                 " WHERE tenant_id = %s AND key = %s AND version = %s",
                        (tenant_id, key, version))
        return None if row is None else (row[0], row[1], row[2])

    def data_key_ids(self, tenant_id: str, key: str) -> dict[int, str | None]:
        rows = fetch_all(self.db, "SELECT version, dek_id FROM secret_versions"
                                  " WHERE tenant_id = %s AND key = %s", (tenant_id, key))
        return {int(version): dek for version, dek in rows}

    def current_versions(self, tenant_id: str) -> dict[str, int]:
        rows = fetch_all(self.db, "SELECT key, version FROM current_secrets"
                                  " WHERE tenant_id = %s AND NOT deleted", (tenant_id,))
        return {str(key): int(version) for key, version in rows}

    def versions(self, tenant_id: str, key: str) -> list[tuple[int, str, str, str]]:
        rows = fetch_all(self.db, "SELECT version, created_at, created_by, state"
                                  " FROM secret_versions WHERE tenant_id = %s AND key = %s"
                                  " ORDER BY version", (tenant_id, key))
        return [(int(v), str(c), str(b), str(s)) for v, c, b, s in rows]

    def keys_page(self, tenant_id: str, prefix: str, after: str, limit: int,
                  at: str | None) -> list[tuple[str, int, str]]:
        key = self.key
        if at is None:
            sql = ("SELECT key, version, updated_at FROM current_secrets"
                   " WHERE tenant_id = %s AND NOT deleted AND substr(key, 1, %s) = %s"
                   f" AND {key} > %s ORDER BY {key} LIMIT %s")
            params: tuple[Any, ...] = (tenant_id, len(prefix), prefix, after, limit)
        else:
            sql = ("SELECT k.key, k.version, k.at FROM key_timeline k"
                   " WHERE k.tenant_id = %s AND substr(k.key, 1, %s) = %s"
                   f" AND k.{key} > %s AND k.live AND k.position = (SELECT MAX(position)"
                   " FROM key_timeline l WHERE l.tenant_id = k.tenant_id AND l.key = k.key"
                   f" AND l.at <= %s) ORDER BY k.{key} LIMIT %s")
            params = (tenant_id, len(prefix), prefix, after, at, limit)
        return [(str(k), int(v), str(u)) for k, v, u in fetch_all(self.db, sql, params)]

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
