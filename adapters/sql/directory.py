"""The tenant directory (``core.directory.TenantDirectory``) in the home group's database."""

from __future__ import annotations

from secrets_ledger.adapters.sql.database import Database, fetch_all, fetch_one
from secrets_ledger.core.directory_ports import Listing

MOVED = "UPDATE tenant_directory_moves SET moves = moves + 1"


class SqlTenantDirectory:
    def __init__(self, db: Database, home: str) -> None:
        self.db = db
        self.home = home  # the group of a tenant not listed

    def group_of(self, tenant: str) -> str | None:
        row = fetch_one(self.db, "SELECT group_name FROM tenant_directory WHERE tenant = %s",
                        (tenant,))
        return None if row is None else str(row[0])

    def place(self, tenant: str, group: str, at: str) -> str:
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO tenant_directory (tenant, group_name, placed_at)"
                        " VALUES (%s, %s, %s) ON CONFLICT (tenant) DO NOTHING",
                        (tenant, group, at))
            cur.execute("SELECT group_name FROM tenant_directory WHERE tenant = %s",
                        (tenant,))
            row = cur.fetchone()
        assert row is not None  # inserted, or there already
        return str(row[0])

    def listing(self, tenant: str) -> Listing | None:
        row = fetch_one(self.db, "SELECT group_name, moving_to FROM tenant_directory"
                                 " WHERE tenant = %s", (tenant,))
        return None if row is None else Listing(str(row[0]), row[1])

    def begin_move(self, tenant: str, source: str, target: str, at: str) -> bool:
        with self.db.transaction() as cur:
            if source == self.home:  # a tenant of the home group may not be listed yet
                cur.execute("INSERT INTO tenant_directory (tenant, group_name, placed_at)"
                            " VALUES (%s, %s, %s) ON CONFLICT (tenant) DO NOTHING",
                            (tenant, source, at))
            cur.execute("UPDATE tenant_directory SET moving_to = %s WHERE tenant = %s"
                        " AND group_name = %s AND (moving_to IS NULL OR moving_to = %s)",
                        (target, tenant, source, target))
            begun = cur.rowcount > 0
            cur.execute(MOVED)
            return begun

    def move(self, tenant: str, source: str, target: str, at: str) -> bool:
        with self.db.transaction() as cur:
            cur.execute("UPDATE tenant_directory SET group_name = %s, placed_at = %s,"
                        " moving_to = NULL WHERE tenant = %s AND group_name = %s",
                        (target, at, tenant, source))
            moved = cur.rowcount > 0
            cur.execute(MOVED)
            return moved

    def record_copy(self, tenant: str, group: str, upto: int) -> None:
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO tenant_copies (tenant, group_name, copied_upto)"
                        " VALUES (%s, %s, %s) ON CONFLICT (tenant, group_name)"
                        " DO UPDATE SET copied_upto = excluded.copied_upto",
                        (tenant, group, upto))

    def copies(self) -> dict[tuple[str, str], int]:
        return {(str(tenant), str(group)): int(upto) for tenant, group, upto in fetch_all(
            self.db, "SELECT tenant, group_name, copied_upto FROM tenant_copies")}

    def moves(self) -> int:
        row = fetch_one(self.db, "SELECT moves FROM tenant_directory_moves")
        return 0 if row is None else int(row[0])

    def entries(self) -> dict[str, str]:
        return {str(tenant): str(group) for tenant, group in fetch_all(
            self.db, "SELECT tenant, group_name FROM tenant_directory ORDER BY tenant")}

    def list_tenants_here(self, at: str) -> int:
        """Lists in the home group every tenant the views of this database hold that is not
        listed yet (a deployment that adds groups: its tenants stay in the home group,
        now found without asking the directory again); how many."""
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO tenant_directory (tenant, group_name, placed_at)"
                        " SELECT tenant, %s, %s FROM tenants ON CONFLICT (tenant) DO NOTHING",
                        (self.home, at))
            return max(cur.rowcount, 0)
