"""The tenants' transparency logs as stored beside the events (in the event store's own
database, so that a batch's leaves commit in the events' transaction): one row per leaf
holding the subtrees it completes (``domain.merkle_log``), and each log's latest signed
checkpoint. A log's size is its last index (the primary key's end), its root the hash of
its peaks: no per-log row is rewritten by every batch.

``log_leaves.record_id`` is ``''`` for a tenant event (its record is the tenant's own
stream at ``record_version``) and a read record's id otherwise; a record is in a log at
most once (a unique index), and a leaf index is taken at most once (the primary key):
a writer whose cached head is stale fails on it and retries, as on an event conflict.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

from secrets_ledger.adapters.sql.database import Cursor, Database, fetch_all, fetch_one
from secrets_ledger.core.log_ports import HeadRow, StoredCheckpoint, StoredLeaf
from secrets_ledger.domain.log_fold import CHUNK, LogSnapshot, row_frame
from secrets_ledger.domain.merkle_log import LogHead, head_from, node_row, peaks

TABLES = ("log_leaves", "log_checkpoints", "log_built")


def log_ddl(blob: str, without_rowid: str = "") -> list[str]:
    """The log's tables, in the backend's type for bytes (and SQLite's compact layout)."""
    return [
        "CREATE TABLE IF NOT EXISTS log_leaves (tenant_id TEXT NOT NULL, idx BIGINT NOT NULL,"
        f" record_id TEXT NOT NULL, record_version BIGINT NOT NULL, hashes {blob} NOT NULL,"
        f" PRIMARY KEY (tenant_id, idx)){without_rowid}",
        # Led by the record, not the tenant: an index led by the tenant is one a planner
        # with stale statistics takes for a tenant's range or a proof's rows, and then
        # walks a whole log for each (0.3 s a proof, measured on a log of 10^6 leaves).
        "DROP INDEX IF EXISTS log_leaves_record",
        "CREATE UNIQUE INDEX IF NOT EXISTS log_leaves_by_record"
        " ON log_leaves (record_id, record_version, tenant_id)",
        "CREATE TABLE IF NOT EXISTS log_checkpoints (tenant_id TEXT PRIMARY KEY,"
        f" size BIGINT NOT NULL, root {blob} NOT NULL, note TEXT NOT NULL,"
        " signed_at TEXT NOT NULL)",
        # Whether every record stored so far is in the logs (a store written before them
        # is not until ``build_logs`` has run).
        "CREATE TABLE IF NOT EXISTS log_built (id INTEGER PRIMARY KEY, complete BOOLEAN NOT NULL)",
    ]


LeafRow = tuple[str, int, str, int, bytes]  # tenant id, index, record id, version, hashes

# The tenants with a log, one step of the primary key's index each (a skip-scan).
TENANTS = """
WITH RECURSIVE tenants(id) AS (
  SELECT min(tenant_id) FROM log_leaves
  UNION ALL
  SELECT (SELECT min(tenant_id) FROM log_leaves WHERE tenant_id > tenants.id)
  FROM tenants WHERE tenants.id IS NOT NULL)
"""
LOG_TENANTS = TENANTS + "SELECT id FROM tenants WHERE id IS NOT NULL"

# One statement, so one snapshot: the store's last position, and each log's size and
# checkpoint at that position (a batch's leaves commit with its records).
SNAPSHOT = TENANTS + """
SELECT 's', id, (SELECT idx FROM log_leaves WHERE tenant_id = tenants.id
                 ORDER BY idx DESC LIMIT 1) + 1, NULL
FROM tenants WHERE id IS NOT NULL
UNION ALL SELECT 'c', tenant_id, size, root FROM log_checkpoints WHERE size > 0
UNION ALL SELECT 'p', NULL, ({position}), NULL"""

INSERT_LEAF = ("INSERT INTO log_leaves (tenant_id, idx, record_id, record_version, hashes)"
               " VALUES (%s, %s, %s, %s, %s)")


class SqlLogRows:
    """The logs' rows, read (and checkpoints written) through the event store's database."""

    def __init__(self, db: Database, position_sql: str,
                 durable: Callable[[], None] = lambda: None) -> None:
        """``position_sql``: the statement that reads the event store's last position;
        ``durable``: returns once every commit the store shows is as safe as an
        acknowledged one (PostgreSQL with synchronous standbys: see ``durable_commits``)."""
        self.db = db
        self.durable = durable
        self._snapshot = SNAPSHOT.format(position=position_sql)
        self._lock = threading.Lock()
        self._grown: dict[str, tuple[int, bytes]] = {}

    def heads(self, tenant_ids: Sequence[str]) -> dict[str, LogHead]:
        """The stored head of each of these logs (absent: an empty log)."""
        heads = {}
        for tenant_id in tenant_ids:
            size = self.log_size(tenant_id)
            if size:
                heads[tenant_id] = head_from(size, self.rows(
                    tenant_id, [node_row(node)[0] for node in peaks(size)]))
        return heads

    # Every read below names the whole primary key, or the tenant and a range or an
    # order of ``idx``: a planner that believes a tenant has no rows (statistics older
    # than a big log) otherwise filters a whole log through the tenant's prefix of the
    # index (measured: 0.25 s for ``idx IN (…)`` and 0.35 s for ``max(idx)`` on 10^6).

    def log_size(self, tenant_id: str) -> int:
        """How many leaves the log holds (its last index, from the primary key's end)."""
        row = fetch_one(self.db, "SELECT idx FROM log_leaves WHERE tenant_id = %s"
                                 " ORDER BY idx DESC LIMIT 1", (tenant_id,))
        return 0 if row is None else int(row[0]) + 1

    def rows(self, tenant_id: str, indexes: Iterable[int]) -> dict[int, bytes]:
        wanted = sorted(set(indexes))
        lookup = "SELECT idx, hashes FROM log_leaves WHERE tenant_id = %s AND idx = %s"
        return {int(row[0]): bytes(row[1]) for row in fetch_all(
            self.db, " UNION ALL ".join([lookup] * len(wanted)),
            [value for index in wanted for value in (tenant_id, index)])} if wanted else {}

    def size(self, tenant_id: str) -> tuple[int, bytes] | None:
        """The head to sign, once its leaves are as safe as an acknowledged write."""
        head = self._head(tenant_id)
        self.durable()
        return head

    def _head(self, tenant_id: str) -> tuple[int, bytes] | None:
        head = self.heads([tenant_id]).get(tenant_id)
        return None if head is None else (head.size, head.root)

    def grown(self, heads: Iterable[HeadRow]) -> None:
        """Heads this process appended to (the next checkpoint round signs them)."""
        with self._lock:
            for tenant_id, size, root in heads:
                if self._grown.get(tenant_id, (0, b""))[0] < size:
                    self._grown[tenant_id] = (size, root)

    def leaves(self, tenant_id: str, start: int, end: int) -> list[StoredLeaf]:
        """The stored leaves ``start`` to ``end - 1`` of a log, in order."""
        return [StoredLeaf(int(row[0]), row[1], int(row[2]), bytes(row[3])) for row in fetch_all(
            self.db, "SELECT idx, record_id, record_version, hashes FROM log_leaves"
                     " WHERE tenant_id = %s AND idx >= %s AND idx < %s ORDER BY idx",
            (tenant_id, start, end))]

    def leaf_rows(self, tenant_id: str, start: int, end: int
                  ) -> list[tuple[int, str, int, bytes]]:
        return [tuple(leaf) for leaf in self.leaves(tenant_id, start, end)]  # type: ignore[misc]

    def log_tenants(self) -> list[str]:
        """Every tenant with a log: one step of the primary key's index per tenant, not a
        scan of every leaf (``DISTINCT`` reads them all)."""
        return [row[0] for row in fetch_all(self.db, LOG_TENANTS)]

    def snapshot(self) -> LogSnapshot:
        position, sizes, checkpoints = 0, {}, {}
        for kind, tenant_id, number, root in fetch_all(self.db, self._snapshot):
            if kind == "s":
                sizes[tenant_id] = int(number)
            elif kind == "c":
                checkpoints[tenant_id] = (int(number), bytes(root))
            else:
                position = int(number or 0)
        return LogSnapshot(position, sizes, checkpoints)

    def chunk_digests(self, sizes: dict[str, int], chunk: int = CHUNK
                      ) -> dict[str, list[bytes]]:
        """Each log's digest per ``chunk`` leaves (``domain.log_fold``), of its rows below
        the given size: here in Python, a chunk of rows at a time."""
        digests: dict[str, list[bytes]] = {}
        for tenant_id, size in sizes.items():
            chunks = digests[tenant_id] = []
            for start in range(0, size, chunk):
                digest = hashlib.sha256()
                for leaf in self.leaves(tenant_id, start, min(start + chunk, size)):
                    digest.update(row_frame(leaf.record_id, leaf.record_version, leaf.hashes))
                chunks.append(digest.digest())
        return digests

    def checkpoint_roots(self, tenant_id: str | None) -> dict[str, tuple[int, bytes]]:
        where, params = ("", ()) if tenant_id is None else (" WHERE tenant_id = %s",
                                                            (tenant_id,))
        return {row[0]: (int(row[1]), bytes(row[2])) for row in fetch_all(
            self.db, f"SELECT tenant_id, size, root FROM log_checkpoints{where}", params)}

    def leaf_of(self, tenant_id: str, record_id: str, record_version: int) -> int | None:
        row = fetch_one(self.db, "SELECT idx FROM log_leaves WHERE tenant_id = %s"
                                 " AND record_id = %s AND record_version = %s",
                        (tenant_id, record_id, record_version))
        return None if row is None else int(row[0])

    # ---- checkpoints ------------------------------------------------------------------

    def unsigned(self) -> list[HeadRow]:
        """The heads this process grew since the last call (taken: a round signs them)."""
        with self._lock:
            grown, self._grown = self._grown, {}
        return [(tenant_id, size, root) for tenant_id, (size, root) in grown.items()]

    def behind(self) -> list[HeadRow]:
        """The heads of every log whose latest checkpoint is older than it (a scan: for a
        server's start, which signs what another process left unsigned)."""
        signed = self.checkpoint_roots(None)
        heads = []
        for tenant_id in self.log_tenants():
            size = self.log_size(tenant_id)
            if signed.get(tenant_id, (0, b""))[0] < size:
                found = self._head(tenant_id)
                if found is not None:
                    heads.append((tenant_id, *found))
        if heads:
            self.durable()  # heads to sign, as ``size``
        return heads

    def checkpoint(self, tenant_id: str) -> StoredCheckpoint | None:
        row = fetch_one(self.db, "SELECT size, root, note FROM log_checkpoints"
                                 " WHERE tenant_id = %s", (tenant_id,))
        return None if row is None else StoredCheckpoint(int(row[0]), bytes(row[1]), row[2])

    def store_checkpoints(self, rows: Sequence[tuple[str, int, bytes, str, str]]) -> None:
        """Stores signed checkpoints (tenant, size, root, note, time), each only if newer
        than the one stored, or the same one with more signatures (a witness's)."""
        with self.db.transaction() as cur:
            cur.executemany(
                "INSERT INTO log_checkpoints (tenant_id, size, root, note, signed_at)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (tenant_id) DO UPDATE SET"
                " size = excluded.size, root = excluded.root, note = excluded.note,"
                " signed_at = excluded.signed_at WHERE log_checkpoints.size < excluded.size"
                " OR (log_checkpoints.size = excluded.size"
                " AND log_checkpoints.root = excluded.root"
                " AND length(log_checkpoints.note) < length(excluded.note))", rows)

    # ---- building the logs of an older store --------------------------------------------

    def complete(self) -> bool:
        row = fetch_one(self.db, "SELECT complete FROM log_built WHERE id = 1")
        return row is not None and bool(row[0])

    @contextmanager
    def building(self) -> Iterator[Cursor | None]:
        """A transaction in which to build the logs (None: they are complete). Under the
        migration lock: a second process waits, then finds them complete; a build that
        fails stores nothing, and the next one starts from nothing."""
        with self.db.transaction() as cur:
            self.db.lock_for_migrations(cur)
            cur.execute("SELECT complete FROM log_built WHERE id = 1")
            row = cur.fetchone()
            if row is not None and row[0]:
                yield None
                return
            for table in TABLES:
                cur.execute(f"DELETE FROM {table}")
            yield cur
            cur.execute("INSERT INTO log_built (id, complete) VALUES (1, %s)", (True,))


def append_rows(cur: Cursor, leaves: Sequence[LeafRow]) -> None:
    cur.executemany(INSERT_LEAF, leaves)
