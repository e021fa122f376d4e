"""Proofs of a tenant's log, made from its stored rows: each proof is one read of at most
two hashes per tree level (``merkle_log``), whatever the log's size.

The subtrees of at least ``CACHED_WIDTH`` leaves are kept in memory once computed: they
never change (a log only grows), every proof of a log shares its upper levels, and so a
busy log's proofs read about as many rows (its lower levels) as a small log's do. The
map is emptied when full rather than kept in recency order: reads take no lock, and the
next proofs of each busy log fill it again."""

from __future__ import annotations

from collections.abc import Sequence

from secrets_ledger.core.log_ports import LogRows
from secrets_ledger.domain.errors import InvalidRequest, Unavailable
from secrets_ledger.domain.merkle_log import (
    Span,
    consistency_spans,
    inclusion_spans,
    needed,
    node_row,
    nodes_from,
    peaks,
    root_of,
    span_hash,
)

CACHED_WIDTH = 64  # subtrees of 64 leaves and more: a 10^6-leaf log's proof reads 6 rows
SUBTREES_CACHED = 65_536  # about 16 MiB: a hash, its key and the map's own overhead


class LogProofs:
    def __init__(self, rows: LogRows) -> None:
        self.rows = rows
        # Per tenant, its cached subtrees by span: a proof looks up every span of its
        # path in one map (the narrow ones are never there), without a key per tenant.
        self._subtrees: dict[str, dict[Span, bytes]] = {}
        self._cached = 0

    def _hashes(self, tenant_id: str, spans: Sequence[Span]) -> list[bytes]:
        subtrees = self._subtrees.get(tenant_id)
        if subtrees is None:
            subtrees = self._subtrees[tenant_id] = {}
        found = [subtrees.get(span) for span in spans]
        missing = [place for place, value in enumerate(found) if value is None]
        if missing:
            wanted = needed(spans[place] for place in missing)
            stored = self.rows.rows(tenant_id, {node_row(node)[0] for node in wanted})
            nodes = nodes_from(stored, wanted)
            if len(nodes) != len(wanted):  # a row the head promised is not there
                raise Unavailable("the log's stored rows are incomplete; run verify")
            if self._cached >= SUBTREES_CACHED:
                self._subtrees, self._cached = {tenant_id: subtrees}, 0
                subtrees.clear()
            for place in missing:
                span = spans[place]
                found[place] = value = span_hash(span, nodes)
                if span[1] - span[0] >= CACHED_WIDTH:
                    subtrees[span] = value
                    self._cached += 1
        return found  # type: ignore[return-value]

    def inclusion(self, tenant_id: str, index: int, size: int) -> list[bytes]:
        """The inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
        if not 0 <= index < size:
            raise InvalidRequest("the leaf index must be below the tree size")
        return self._hashes(tenant_id, inclusion_spans(index, size))

    def consistency(self, tenant_id: str, old: int, size: int) -> list[bytes]:
        """The consistency proof from the tree of ``old`` leaves to that of ``size``."""
        if not 0 < old <= size:
            raise InvalidRequest("the old size must be between 1 and the new size")
        return [] if old == size else self._hashes(tenant_id, consistency_spans(old, size))

    def root(self, tenant_id: str, size: int) -> bytes:
        """The root of the tree of the first ``size`` leaves."""
        return root_of(self._hashes(tenant_id, [(node[1] << node[0],
                                                 (node[1] + 1) << node[0])
                                                for node in peaks(size)]))
