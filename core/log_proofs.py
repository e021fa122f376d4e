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
        self._subtrees: dict[tuple[str, Span], bytes] = {}

    def _hashes(self, tenant_id: str, spans: Sequence[Span]) -> list[bytes]:
        subtrees = self._subtrees
        found = {span: subtrees.get((tenant_id, span)) for span in spans
                 if span[1] - span[0] >= CACHED_WIDTH}
        missing = [span for span in spans if found.get(span) is None]
        if missing:
            wanted = needed(missing)
            stored = self.rows.rows(tenant_id, {node_row(node)[0] for node in wanted})
            nodes = nodes_from(stored, wanted)
            if len(nodes) != len(wanted):  # a row the head promised is not there
                raise Unavailable("the log's stored rows are incomplete; run verify")
            if len(subtrees) >= SUBTREES_CACHED:
                subtrees.clear()
            for span in missing:
                found[span] = value = span_hash(span, nodes)
                if span[1] - span[0] >= CACHED_WIDTH:
                    subtrees[tenant_id, span] = value
        return [found[span] for span in spans]  # type: ignore[misc]

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
