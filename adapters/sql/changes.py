"""The change feed's reads (``core.feed_ports.ChangeRows``): the audit trail's changes,
which are in the views' database, and their leaves' indexes, which are in the event
store's (one database on PostgreSQL, two files on SQLite: two statements, not a join).
"""

from __future__ import annotations

from collections.abc import Collection

from secrets_ledger.adapters.sql.database import Database, fetch_all, fetch_one
from secrets_ledger.core.feed_ports import ChangeRow
from secrets_ledger.projections.audit import AUDIT_SLOTS

# ``action <> 'read'`` spelled as the partial index ``audit_trail_changes`` spells it, so
# that a planner matches the two.
CHANGES = ("SELECT t.tenant, a.tenant_id, a.position, a.at, a.action, a.key, a.version,"
           " a.actor, a.request_id, a.record_version FROM audit_trail a"
           " JOIN tenants t ON t.tenant_id = a.tenant_id"
           " WHERE a.action <> 'read' AND a.position > %s AND a.position <= %s")


class SqlChangeRows:
    def __init__(self, views: Database, log: Database) -> None:
        self.views = views
        self.log = log

    def projected(self) -> int:
        row = fetch_one(self.views, "SELECT min(position) FROM projection_tracking")
        applied = int(row[0]) if row is not None and row[0] is not None else 0
        return (applied + 1) * AUDIT_SLOTS - 1  # every slot of the last applied event

    def changes(self, tenant_id: str | None, after: int, upto: int, limit: int, *,
                prefix: str = "", actions: Collection[str] | None = None) -> list[ChangeRow]:
        params: list[object]
        sql, params = CHANGES, [after, upto]
        if tenant_id is not None:
            sql += " AND a.tenant_id = %s"
            params.append(tenant_id)
        if prefix:
            sql += " AND substr(a.key, 1, %s) = %s"
            params += [len(prefix), prefix]
        if actions is not None:
            if not actions:
                return []
            sql += f" AND a.action IN ({', '.join(['%s'] * len(actions))})"
            params += sorted(actions)
        rows = fetch_all(self.views, sql + " ORDER BY a.position LIMIT %s", (*params, limit))
        leaves = self._leaf_indexes({(str(r[1]), int(r[9])) for r in rows})
        return [ChangeRow(int(position), str(tenant), str(at), str(action), key, version,
                          str(actor), str(request_id), int(record_version),
                          leaves.get((str(tid), int(record_version))))
                for tenant, tid, position, at, action, key, version, actor, request_id,
                record_version in rows]

    def _leaf_indexes(self, records: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The log index of each (tenant id, stream version)'s leaf."""
        if not records:
            return {}
        values = ", ".join(["(%s, %s)"] * len(records))
        params = [value for tenant_id, version in records for value in (version, tenant_id)]
        rows = fetch_all(self.log, "SELECT tenant_id, record_version, idx FROM log_leaves"
                                   " WHERE record_id = '' AND (record_version, tenant_id)"
                                   f" IN (VALUES {values})", params)
        return {(str(tenant_id), int(version)): int(idx) for tenant_id, version, idx in rows}
