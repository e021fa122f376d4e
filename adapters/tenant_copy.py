"""A tenant's records and rows, read out of one group's storage and stored into another's
(``core.move_ports.TenantCopy``), over either backend's ``Storage``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

from secrets_ledger.adapters.backend import Storage
from secrets_ledger.adapters.eventstore import StoredStreams
from secrets_ledger.adapters.sql.database import fetch_all
from secrets_ledger.adapters.sql.keys import KEY_TABLES
from secrets_ledger.core.move_ports import LogLeaf, TenantRows
from secrets_ledger.domain.reads import MovedReads

HASH_BYTES = 32  # a stored leaf row holds its hash first (then the subtrees it completes)
COPIED_COLUMNS = ("token_id, token_hash, role, tenant, description, created_at, expires_at,"
                  " revoked_at, created_by, revoked_by, sigv4_key, sigv4_master_key_id")
TENANT_KEY_COLUMNS = "tenant_id, key_version, wrapped, master_key_id, created_at"
DATA_KEY_COLUMNS = "dek_id, tenant_id, key_version, wrapped"


def _marks(columns: str) -> str:
    return ", ".join(["%s"] * (columns.count(",") + 1))


class StoredTenantCopy:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.db = storage.db

    def leaves(self, tenant_id: UUID) -> list[LogLeaf]:
        rows = self.storage.log_rows
        size = rows.log_size(str(tenant_id))
        return [LogLeaf(record_id, version, bytes(hashes[:HASH_BYTES]))
                for _, record_id, version, hashes in rows.leaf_rows(str(tenant_id), 0, size)]

    def records(self, tenant_id: UUID, leaves: Sequence[LogLeaf]) -> list[Any]:
        streams = self.storage.streams
        events = {stored.version: stored.decode() for stored in streams.stream(tenant_id)}
        found: list[Any] = []
        for leaf in leaves:
            if not leaf.record_id:
                found.append(events[leaf.version])
                continue
            record = streams.stored_event(UUID(leaf.record_id), leaf.version)
            if record is None:
                raise LookupError(f"read record {leaf.record_id} of the log is missing")
            found.append(record if isinstance(record, MovedReads.Copied)  # moved before
                         else MovedReads.copied(record, str(tenant_id)))
        return found

    def rows(self, tenant: str, tenant_id: UUID) -> TenantRows:
        return TenantRows(
            fetch_all(self.db, f"SELECT {TENANT_KEY_COLUMNS} FROM tenant_keys"
                               " WHERE tenant_id = %s", (str(tenant_id),)),
            fetch_all(self.db, f"SELECT {DATA_KEY_COLUMNS} FROM data_keys"
                               " WHERE tenant_id = %s", (str(tenant_id),)),
            fetch_all(self.db, f"SELECT {COPIED_COLUMNS} FROM tokens WHERE tenant = %s",
                      (tenant,)))

    def store(self, records: Sequence[Any], rows: TenantRows) -> None:
        with self.db.transaction() as cur:
            cur.executemany(f"INSERT INTO tenant_keys ({TENANT_KEY_COLUMNS}) VALUES"
                            f" ({_marks(TENANT_KEY_COLUMNS)}) ON CONFLICT DO NOTHING",
                            rows.tenant_keys)
            cur.executemany(f"INSERT INTO tokens ({COPIED_COLUMNS}) VALUES"
                            f" ({_marks(COPIED_COLUMNS)}) ON CONFLICT DO NOTHING", rows.tokens)
        streams = self.storage.streams
        assert isinstance(streams, StoredStreams)
        streams.copy_in(records, [(str(d), str(t), int(v), str(w))
                                  for d, t, v, w in rows.data_keys])

    def revoke_as(self, tokens: Sequence[tuple[Any, ...]]) -> None:
        revoked = [(row[7], row[9], row[0]) for row in tokens if row[7] is not None]
        with self.db.transaction() as cur:
            cur.executemany("UPDATE tokens SET revoked_at = %s, revoked_by = %s"
                            " WHERE token_id = %s AND revoked_at IS NULL", revoked)

    def erase(self, tenant: str, tenant_id: UUID) -> None:
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM tokens WHERE tenant = %s", (tenant,))
            cur.execute("DELETE FROM data_keys WHERE tenant_id = %s", (str(tenant_id),))
            cur.execute("DELETE FROM tenant_keys WHERE tenant_id = %s", (str(tenant_id),))
        self.db.erase_deleted((*KEY_TABLES, "tokens"))
