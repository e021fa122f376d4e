"""A tenant's transparency log as stored: an RFC 9162 Merkle tree kept as the complete
subtrees each leaf completes, and the proofs made from them.

Appending leaf ``i`` completes the subtrees ending at it: the leaf itself (level 0) and,
for each trailing zero bit of ``i + 1``, the subtree one level up. The log stores them
in leaf ``i``'s row, level by level (``row_hashes``), so the node at level ``l`` and index
``j`` (leaves ``j·2^l`` to ``(j+1)·2^l - 1``) is the ``l``-th hash of row
``(j+1)·2^l - 1``. Every node a proof needs is either such a complete subtree, or (at
the tree's right edge) the hash of a few of them: a proof reads at most two per level.

The hashing (``verifier.leaf_hash``/``node_hash``) is the verifier's own: what the
server stores is what an auditor recomputes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from secrets_ledger.verifier import HASH_BYTES, leaf_hash, node_hash

Node = tuple[int, int]  # (level, index): the complete subtree of leaves [j·2^l, (j+1)·2^l)
Span = tuple[int, int]  # [start, end) leaves: a subtree of the RFC 9162 decomposition
EMPTY_ROOT = bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")


def node_row(node: Node) -> tuple[int, int]:
    """The row (leaf index) holding a complete subtree, and its offset in that row."""
    level, index = node
    return ((index + 1) << level) - 1, level * HASH_BYTES


def peaks(size: int) -> list[Node]:
    """The complete subtrees that make up the first ``size`` leaves, largest first."""
    nodes, start = [], 0
    for level in range(size.bit_length() - 1, -1, -1):
        if size >> level & 1:
            nodes.append((level, start >> level))
            start += 1 << level
    return nodes


def span_nodes(span: Span) -> list[Node]:
    """The complete subtrees of a span of the decomposition, left to right (one, unless
    the span ends at the tree's right edge)."""
    start, end = span
    nodes = []
    while start < end:
        level = (end - start).bit_length() - 1
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def inclusion_spans(index: int, size: int) -> list[Span]:
    """PATH(index, D[size]) of RFC 9162 2.1.3.1, as the spans whose hashes it lists."""
    spans: list[Span] = []
    start, end = 0, size
    while end - start > 1:
        # The split point: the largest power of two below the width (inlined, as in
        # consistency_spans: a call per level was a fifth of a 10^6-leaf proof's time).
        middle = start + (1 << ((end - start - 1).bit_length() - 1))
        if index < middle:
            spans.append((middle, end))
            end = middle
        else:
            spans.append((start, middle))
            start = middle
    spans.reverse()
    return spans


def consistency_spans(old: int, size: int) -> list[Span]:
    """PROOF(old, D[size]) of RFC 9162 2.1.4.1, as the spans whose hashes it lists."""
    spans: list[Span] = []
    start, end, whole = 0, size, True
    while old != end:
        middle = start + (1 << ((end - start - 1).bit_length() - 1))
        if old <= middle:
            spans.append((middle, end))
            end = middle
        else:
            spans.append((start, middle))
            start, whole = middle, False
    if not whole:
        spans.append((start, end))
    spans.reverse()
    return spans


def needed(spans: Iterable[Span]) -> set[Node]:
    return {node for span in spans for node in span_nodes(span)}


def span_hash(span: Span, nodes: Mapping[Node, bytes]) -> bytes:
    parts = [nodes[node] for node in span_nodes(span)]
    value = parts[-1]
    for part in reversed(parts[:-1]):
        value = node_hash(part, value)
    return value


def root_of(peak_hashes: list[bytes]) -> bytes:
    """The root of a tree from its peaks' hashes (largest first)."""
    if not peak_hashes:
        return EMPTY_ROOT
    value = peak_hashes[-1]
    for part in reversed(peak_hashes[:-1]):
        value = node_hash(part, value)
    return value


@dataclass
class LogHead:
    """A log's size and its peaks: all it takes to append and to say the root."""

    size: int = 0
    peak_hashes: list[bytes] = field(default_factory=list)

    def copy(self) -> LogHead:
        return LogHead(self.size, list(self.peak_hashes))

    @property
    def root(self) -> bytes:
        return root_of(self.peak_hashes)

    def append(self, leaf: bytes) -> bytes:
        """Appends a leaf; returns the row to store for it (``row_hashes``)."""
        value = leaf_hash(leaf)
        row = [value]
        index = self.size
        while index & 1:  # each trailing 1 of the old size: a subtree completed
            value = node_hash(self.peak_hashes.pop(), value)
            row.append(value)
            index >>= 1
        self.peak_hashes.append(value)
        self.size += 1
        return b"".join(row)


def head_from(size: int, rows: Mapping[int, bytes]) -> LogHead:
    """A log's head from its stored rows (those of ``peaks(size)``)."""
    hashes = []
    for node in peaks(size):
        row, offset = node_row(node)
        hashes.append(rows[row][offset:offset + HASH_BYTES])
    return LogHead(size, hashes)


def nodes_from(rows: Mapping[int, bytes], wanted: Iterable[Node]) -> dict[Node, bytes]:
    found = {}
    for node in wanted:
        row, offset = node_row(node)
        stored = rows.get(row)
        if stored is not None and len(stored) >= offset + HASH_BYTES:
            found[node] = stored[offset:offset + HASH_BYTES]
    return found
