"""The logs' rows on PostgreSQL: as ``adapters.sql.tlog``, with the chunk digests that
check a log during replay computed inside the server (``sha256`` over each chunk's framed
rows, in index order), so that a check of 10^6 leaves moves 245 digests, not the rows."""

from __future__ import annotations

from secrets_ledger.adapters.sql.tlog import SqlLogRows
from secrets_ledger.domain.log_fold import CHUNK

# Framed as ``domain.log_fold.row_frame``: each field's length (4 bytes) before it, the
# version as 8 bytes. One range scan of the primary key per log, below its size (joined
# any other way, the planner sorted every leaf on disk first: 1.4 s against 0.8 s for
# 10^6 leaves); no JIT (90 ms of compiling for a query this size).
CHUNK_DIGESTS = """
SELECT s.tenant_id, d.digest
FROM unnest(%s::text[], %s::bigint[]) WITH ORDINALITY AS s(tenant_id, size, n)
CROSS JOIN LATERAL (
  SELECT l.idx / %s AS chunk, sha256(string_agg(
    int4send(octet_length(l.record_id)) || convert_to(l.record_id, 'UTF8')
    || int8send(l.record_version) || int4send(length(l.hashes)) || l.hashes,
    ''::bytea ORDER BY l.idx)) AS digest
  FROM log_leaves l WHERE l.tenant_id = s.tenant_id AND l.idx < s.size
  GROUP BY 1) AS d
ORDER BY s.n, d.chunk
"""


class PostgresLogRows(SqlLogRows):
    def chunk_digests(self, sizes: dict[str, int], chunk: int = CHUNK
                      ) -> dict[str, list[bytes]]:
        digests: dict[str, list[bytes]] = {tenant_id: [] for tenant_id in sizes}
        with self.db.transaction() as cur:
            cur.execute("SET LOCAL jit = off")
            cur.execute(CHUNK_DIGESTS, (list(sizes), list(sizes.values()), chunk))
            for tenant_id, digest in cur.fetchall():
                digests[tenant_id].append(bytes(digest))
        return digests
