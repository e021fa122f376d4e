"""The key store's rows (``ports.KeyRows``): tenant keys wrapped by a master key, data keys
wrapped by a tenant key. Deleting rows here is what crypto-shreds values."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence

from secrets_ledger.adapters.sql.database import Cursor, Database, fetch_one
from secrets_ledger.adapters.sql.processes import SqlProcesses
from secrets_ledger.core.ports import MasterKeySwitch, TenantKeyRow
from secrets_ledger.domain.errors import InvalidRequest, Unavailable
from secrets_ledger.domain.times import format_time, utc_now

KEY_TABLES = ("data_keys", "tenant_keys")


class SqlKeyRows:
    def __init__(self, db: Database, processes: SqlProcesses) -> None:
        self.db = db
        self.processes = processes
        self._erasing = threading.Lock()
        self._deletions = 0  # deletions committed by this process ...
        self._erased = 0  # ... and how many of them an erasure has covered

    def _key_in_force(self, cur: Cursor, *, exclusive: bool) -> str:
        cur.execute("SELECT key_id FROM master_key_in_force WHERE singleton = 1"
                    + self.db.row_lock(exclusive=exclusive))
        row = cur.fetchone()
        if row is None:
            raise Unavailable("the store has no master key in force: start it once first")
        return str(row[0])

    def insert_tenant_key(self, tenant_id: str, key_version: int, wraps: Mapping[str, str],
                          created_at: str) -> None:
        with self.db.transaction() as cur:
            # The share lock holds a rotation back until this row is in: the rotation
            # then re-wraps it, or this insert sees the new key in force.
            in_force = self._key_in_force(cur, exclusive=False)
            wrapped = wraps.get(in_force)
            if wrapped is None:
                raise Unavailable("this process does not hold the master key in force:"
                                  " restart it with that key")
            cur.execute("INSERT INTO tenant_keys (tenant_id, key_version, wrapped, master_key_id,"
                        " created_at) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        (tenant_id, key_version, wrapped, in_force, created_at))

    def store_signing_key(self, token_id: str, wraps: Mapping[str, str]) -> None:
        with self.db.transaction() as cur:
            in_force = self._key_in_force(cur, exclusive=False)  # as insert_tenant_key
            wrapped = wraps.get(in_force)
            if wrapped is None:
                raise Unavailable("this process does not hold the master key in force:"
                                  " restart it with that key")
            cur.execute("UPDATE tokens SET sigv4_key = %s, sigv4_master_key_id = %s"
                        " WHERE token_id = %s", (wrapped, in_force, token_id))

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
        self._deletions += 1

    def shred_tenant(self, tenant_id: str) -> None:
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM data_keys WHERE tenant_id = %s", (tenant_id,))
            cur.execute("DELETE FROM tenant_keys WHERE tenant_id = %s", (tenant_id,))
        self._deletions += 1

    def erase_deleted(self) -> None:
        """Erasures are costly (PostgreSQL rewrites the key tables): callers that wait
        together share one, which covers every deletion committed before it began."""
        wanted = self._deletions
        with self._erasing:
            if self._erased >= wanted:
                return
            covered = self._deletions
            self.db.erase_deleted(KEY_TABLES)
            self._erased = covered

    def master_key_in_force(self) -> str | None:
        row = fetch_one(self.db, "SELECT key_id FROM master_key_in_force WHERE singleton = 1")
        return None if row is None else str(row[0])

    def switch_master_key(self, new_key_id: str, rewrap: Callable[[TenantKeyRow], str],
                          rewrap_signing: Callable[[str, str, str], str]
                          ) -> MasterKeySwitch:
        with self.db.transaction() as cur:
            old_key_id = self._key_in_force(cur, exclusive=True)  # new tenant keys wait
            cur.execute("SELECT 1 FROM retired_master_keys WHERE key_id = %s", (new_key_id,))
            if cur.fetchone() is not None:
                raise InvalidRequest("that master key was retired by an earlier rotation:"
                                     " a retired key never comes back; use a new one")
            # Checked under the lock: a server starting now waits, then sees the new key.
            lacking = self.processes.lacking_in(cur, new_key_id)
            if lacking:
                raise Unavailable(
                    f"{len(lacking)} running server(s) do not hold the new master key yet"
                    f" ({', '.join(lacking)}): give each the new key and restart it, then"
                    " run the rotation again; nothing was changed")
            cur.execute("SELECT tenant_id, key_version, wrapped, master_key_id FROM tenant_keys"
                        " WHERE master_key_id <> %s", (new_key_id,))
            rows = [TenantKeyRow(*row) for row in cur.fetchall()]
            cur.executemany("UPDATE tenant_keys SET wrapped = %s, master_key_id = %s"
                            " WHERE tenant_id = %s AND key_version = %s",
                            [(rewrap(row), new_key_id, row.tenant_id, row.key_version)
                             for row in rows])
            cur.execute("SELECT token_id, sigv4_key, sigv4_master_key_id FROM tokens"
                        " WHERE sigv4_key IS NOT NULL AND sigv4_master_key_id <> %s",
                        (new_key_id,))
            signing = cur.fetchall()
            cur.executemany("UPDATE tokens SET sigv4_key = %s, sigv4_master_key_id = %s"
                            " WHERE token_id = %s",
                            [(rewrap_signing(token_id, wrapped, key_id), new_key_id, token_id)
                             for token_id, wrapped, key_id in signing])
            if old_key_id == new_key_id:
                return MasterKeySwitch(len(rows), new_key_id, None)
            now = format_time(utc_now())
            cur.execute("UPDATE master_key_in_force SET key_id = %s, since = %s"
                        " WHERE singleton = 1", (new_key_id, now))
            cur.execute("INSERT INTO retired_master_keys (key_id, retired_at) VALUES (%s, %s)"
                        " ON CONFLICT DO NOTHING", (old_key_id, now))
            return MasterKeySwitch(len(rows), new_key_id, old_key_id)
