"""The rows a batch adds to the tenants' transparency logs, computed before the batch is
saved so that they go in its transaction.

The writer keeps each log's head (size and peaks, ``merkle_log.LogHead``) between
batches, as it keeps the aggregates. A head is only advanced once its batch is stored;
another process may have appended since, and then the batch's first leaf takes an index
already stored: the save fails as on an event conflict, the head is dropped and read
again, and the batch is re-run.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from secrets_ledger.adapters.sql.tlog import LeafRow, SqlLogRows
from secrets_ledger.core.log_ports import HeadRow
from secrets_ledger.domain.errors import Unavailable
from secrets_ledger.domain.log_leaves import leaves_of
from secrets_ledger.domain.merkle_log import LogHead

HEADS_KEPT = 10_000


@dataclass
class StagedLog:
    """A batch's leaves and the heads they lead to (kept once the batch is stored)."""

    leaves: list[LeafRow] = field(default_factory=list)
    heads: dict[str, LogHead] = field(default_factory=dict)

    @property
    def head_rows(self) -> list[HeadRow]:
        return [(tenant_id, head.size, head.root) for tenant_id, head in self.heads.items()]


class LogAppender:
    def __init__(self, rows: SqlLogRows, kept: int = HEADS_KEPT) -> None:
        self.rows = rows
        self.kept = kept
        self._heads: OrderedDict[str, LogHead] = OrderedDict()
        self._ready = False

    def stage(self, events: Iterable[Any]) -> StagedLog:
        """The rows that put these events (in store order) in their tenants' logs."""
        leaves = [leaf for event in events for leaf in leaves_of(event)]
        staged = StagedLog()
        if not leaves:
            return staged
        self._check_ready()
        missing = sorted({leaf[0] for leaf in leaves} - self._heads.keys())
        loaded = self.rows.heads(missing)
        for tenant_id, record_id, version, leaf in leaves:
            head = staged.heads.get(tenant_id)
            if head is None:
                known = self._heads.get(tenant_id) or loaded.get(tenant_id) or LogHead()
                head = staged.heads[tenant_id] = known.copy()
            index = head.size
            staged.leaves.append((tenant_id, index, record_id, version, head.append(leaf)))
        return staged

    def stored(self, staged: StagedLog) -> None:
        self.rows.grown(staged.head_rows)
        for tenant_id, head in staged.heads.items():
            self._heads[tenant_id] = head
            self._heads.move_to_end(tenant_id)
        while len(self._heads) > self.kept:
            self._heads.popitem(last=False)

    def drop(self, tenant_ids: Sequence[str]) -> None:
        for tenant_id in tenant_ids:
            self._heads.pop(tenant_id, None)

    def _check_ready(self) -> None:
        if not self._ready:
            if not self.rows.complete():
                raise Unavailable("the transparency logs of this store are not built yet:"
                                  " run `secrets-ledger migrate`")
            self._ready = True
