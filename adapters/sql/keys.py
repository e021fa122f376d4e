"""The key store's rows (``ports.KeyRows``): tenant keys wrapped by a master key, data keys
wrapped by a tenant key. Deleting rows here is what crypto-shreds values."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from secrets_ledger.adapters.sql.database import Database, fetch_one
from secrets_ledger.core.ports import TenantKeyRow


class SqlKeyRows:
    def __init__(self, db: Database) -> None:
        self.db = db

    def insert_tenant_key(self, row: TenantKeyRow, created_at: str) -> None:
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO tenant_keys (tenant_id, key_version, wrapped, master_key_id,"
                        " created_at) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        (*row, created_at))

    def tenant_key(self, tenant_id: str, key_version: int) -> TenantKeyRow | None:
        row = fetch_one(self.db, "SELECT wrapped, master_key_id FROM tenant_keys"
                        " WHERE tenant_id = %s AND key_version = %s", (tenant_id, key_version))
        return None if row is None else TenantKeyRow(tenant_id, key_version, row[0], row[1])

    def data_key(self, tenant_id: str, dek_id: str) -> tuple[str, TenantKeyRow] | None:
        row = fetch_one(self.db, "SELECT d.wrapped, t.key_version, t.wrapped, t.master_key_id"
                        " FROM data_keys d JOIN tenant_keys t ON t.tenant_id = d.tenant_id"
                        " AND t.key_version = d.key_version"
                        " WHERE d.dek_id = %s AND d.tenant_id = %s", (dek_id, tenant_id))
        if row is None:
            return None
        return str(row[0]), TenantKeyRow(tenant_id, int(row[1]), row[2], row[3])

    def store_data_keys(self, rows: Sequence[tuple[str, str, int, str]]) -> None:
        """Inserts (dek_id, tenant_id, key_version, wrapped) rows in one transaction."""
        if not rows:
            return
        with self.db.transaction() as cur:
            cur.executemany("INSERT INTO data_keys (dek_id, tenant_id, key_version, wrapped)"
                            " VALUES (%s, %s, %s, %s)", rows)

    def destroy_data_keys(self, tenant_id: str, dek_ids: Sequence[str]) -> None:
        with self.db.transaction() as cur:
            cur.executemany("DELETE FROM data_keys WHERE tenant_id = %s AND dek_id = %s",
                            [(tenant_id, dek_id) for dek_id in dek_ids])

    def shred_tenant(self, tenant_id: str) -> None:
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM data_keys WHERE tenant_id = %s", (tenant_id,))
            cur.execute("DELETE FROM tenant_keys WHERE tenant_id = %s", (tenant_id,))

    def rewrap_tenant_keys(self, master_key_id: str,
                           rewrap: Callable[[TenantKeyRow], str]) -> int:
        with self.db.transaction() as cur:
            cur.execute("SELECT tenant_id, key_version, wrapped, master_key_id FROM tenant_keys"
                        " WHERE master_key_id <> %s", (master_key_id,))
            rows = [TenantKeyRow(*row) for row in cur.fetchall()]
            cur.executemany("UPDATE tenant_keys SET wrapped = %s, master_key_id = %s"
                            " WHERE tenant_id = %s AND key_version = %s",
                            [(rewrap(row), master_key_id, row.tenant_id, row.key_version)
                             for row in rows])
        return len(rows)
