"""Proofs of a tenant's log, made from its stored rows: each proof is one read of at most
two hashes per tree level (``merkle_log``), whatever the log's size."""

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


class LogProofs:
    def __init__(self, rows: LogRows) -> None:
        self.rows = rows

    def _hashes(self, tenant_id: str, spans: Sequence[Span]) -> list[bytes]:
        wanted = needed(spans)
        stored = self.rows.rows(tenant_id, {node_row(node)[0] for node in wanted})
        nodes = nodes_from(stored, wanted)
        if len(nodes) != len(wanted):  # a row the head promised is not there
            raise Unavailable("the log's stored rows are incomplete; run verify")
        return [span_hash(span, nodes) for span in spans]

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
