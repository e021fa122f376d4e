"""Building the transparency logs of a store written before them: every stored record, in
store order, appended to its tenants' logs as a writer would have, in one transaction
(idempotent: a store whose logs are complete is left alone)."""

from __future__ import annotations

from collections.abc import Callable

from secrets_ledger.adapters.sql.tlog import LeafRow, SqlLogRows, append_rows
from secrets_ledger.core.ports import TenantStreams
from secrets_ledger.domain.log_leaves import leaves_of
from secrets_ledger.domain.merkle_log import LogHead

PAGE = 5_000


def build_logs(rows: SqlLogRows, streams: TenantStreams,
               progress: Callable[[int], None] | None = None) -> int | None:
    """Builds the logs if they are not complete, in one transaction; how many records it
    read (None: they were complete already)."""
    if rows.complete():
        return None
    with rows.building() as cur:
        if cur is None:  # another process built them meanwhile
            return None
        heads: dict[str, LogHead] = {}
        position = records = 0
        while page := streams.stored_after(position, PAGE):
            leaves: list[LeafRow] = []
            for stored in page:
                try:
                    made = leaves_of(stored.decode())
                except Exception:  # noqa: S112 (damage ``verify`` names; no leaf to give)
                    continue
                for tenant_id, record_id, version, leaf in made:
                    head = heads.setdefault(tenant_id, LogHead())
                    leaves.append((tenant_id, head.size, record_id, version, head.append(leaf)))
            append_rows(cur, leaves)
            position, records = page[-1].position, records + len(page)
            if progress is not None:
                progress(len(page))
    return records
