"""The change feed's reads (``core.feed_ports.ChangeRows``): the audit trail's changes,
which are in the views' database, and their leaves' indexes, which are in the event
store's (one database on PostgreSQL, two files on SQLite: two statements, not a join).
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from secrets_ledger.adapters.sql.database import Database, fetch_all, fetch_one
from secrets_ledger.core.feed_ports import ChangeRow
from secrets_ledger.projections.audit import AUDIT_SLOTS

PROJECTED = (f"SELECT (coalesce(min(position), 0) + 1) * {AUDIT_SLOTS} - 1"
             " FROM projection_tracking")  # every slot of the last event every view applied
COLUMNS = ("t.tenant, a.tenant_id, a.position, a.at, a.action, a.key, a.version, a.actor,"
           " a.request_id, a.record_version")
WIDTH = COLUMNS.count(",") + 1
# ``action <> 'read'`` spelled as the partial index ``audit_trail_changes`` spells it, so
# that a planner matches the two.
CHANGES = ("SELECT {columns} FROM audit_trail a JOIN tenants t ON t.tenant_id = a.tenant_id"
           " WHERE a.action <> 'read' AND a.position > %s AND a.position <= {upto}")
# Each change's leaf, where the logs share the views' database (PostgreSQL).
LEAF = (", (SELECT l.idx FROM log_leaves l WHERE l.record_id = ''"
        " AND l.record_version = a.record_version AND l.tenant_id = a.tenant_id)")


class SqlChangeRows:
    def __init__(self, views: Database, log: Database, *, one_database: bool,
                 durable: Callable[[], None] = lambda: None) -> None:
        """``one_database``: the logs are in the views' database (a join, not a query);
        ``durable``: returns once every commit the store shows is as safe as an
        acknowledged one. Nothing is served before: a change (or a position) that a
        failover could take back would leave a subscriber past positions the new primary
        hands out again."""
        self.views = views
        self.log = log
        self.one_database = one_database
        self.durable = durable

    def projected(self) -> int:
        row = fetch_one(self.views, PROJECTED)
        self.durable()
        return int(row[0]) if row is not None else AUDIT_SLOTS - 1

    def changes(self, tenant_id: str | None, after: int, limit: int, *,
                upto: int | None = None, prefix: str = "",
                actions: Collection[str] | None = None) -> tuple[list[ChangeRow], int]:
        columns = COLUMNS + (LEAF if self.one_database else "")
        bound_sql = f"({PROJECTED})" if upto is None else "%s"
        sql = CHANGES.format(columns=columns, upto=bound_sql)
        params: list[object] = [after] if upto is None else [after, upto]
        if tenant_id is not None:
            sql += " AND a.tenant_id = %s"
            params.append(tenant_id)
        if prefix:
            sql += " AND substr(a.key, 1, %s) = %s"
            params += [len(prefix), prefix]
        if actions is not None:
            sql += f" AND a.action IN ({', '.join(['%s'] * len(actions))})" if actions else (
                " AND 1 = 0")
            params += sorted(actions)
        # One statement, so one snapshot: the bound (its row's tenant id is null), then
        # the changes under it.
        marker = ", ".join(["NULL"] * (WIDTH + self.one_database - 3))  # after '', NULL, bound
        rows = fetch_all(self.views, f"SELECT '', NULL, {bound_sql}, {marker} UNION ALL"
                                     f" SELECT * FROM ({sql} ORDER BY a.position LIMIT %s) c",
                         ([] if upto is None else [upto]) + params + [limit])
        self.durable()
        bound = next(int(row[2]) for row in rows if row[1] is None)
        found = sorted((row for row in rows if row[1] is not None), key=lambda row: row[2])
        if self.one_database:
            leaves = {(str(r[1]), int(r[9])): r[10] for r in found}
        else:
            leaves = self._leaf_indexes({(str(r[1]), int(r[9])) for r in found})
        return [ChangeRow(int(r[2]), str(r[0]), str(r[3]), str(r[4]), r[5], r[6], str(r[7]),
                          str(r[8]), int(r[9]), leaves.get((str(r[1]), int(r[9]))))
                for r in found], bound

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
