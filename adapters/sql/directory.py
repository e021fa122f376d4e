"""The tenant directory (``core.directory.TenantDirectory``) in the home group's database."""

from __future__ import annotations

from secrets_ledger.adapters.sql.database import Database, fetch_all, fetch_one


class SqlTenantDirectory:
    def __init__(self, db: Database) -> None:
        self.db = db

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

    def entries(self) -> dict[str, str]:
        return {str(tenant): str(group) for tenant, group in fetch_all(
            self.db, "SELECT tenant, group_name FROM tenant_directory ORDER BY tenant")}

    def list_tenants_here(self, group: str, at: str) -> int:
        """Lists in ``group`` every tenant the views of this database hold that is not
        listed yet (a deployment that adds groups: its tenants stay in the home group,
        now found without asking the directory again); how many."""
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO tenant_directory (tenant, group_name, placed_at)"
                        " SELECT tenant, %s, %s FROM tenants ON CONFLICT (tenant) DO NOTHING",
                        (group, at))
            return max(cur.rowcount, 0)
