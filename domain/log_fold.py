"""The transparency logs recomputed inside replay's own pass over the records.

Replay decodes every record once to rebuild the views; the same pass recomputes each
tenant's log from them: every leaf, the subtrees it completes (the row the store must
hold for it), and a digest of those rows per chunk of ``CHUNK`` leaves. The store digests
its rows the same way (``row_frame``; on PostgreSQL inside the server), so checking a log
of 10^6 leaves compares 245 digests instead of moving 10^6 rows into Python. A signed
checkpoint's root is compared when its log reaches its size, as ``LogCheck`` does.

The fold covers the records up to the position of one snapshot (``LogSnapshot``), taken
in the same statement as the stored logs' sizes and checkpoints: writes that commit
while replay runs are neither folded nor compared. A fold can be cut by tenant into parts
(``part``), folded in separate processes, and merged back (``merge``): each part keeps
only its tenants' leaves, so it must see every record that holds any (read records hold
several tenants').

The fast comparison says which logs differ, not where: ``LogCheck`` names the first bad
position when it does (``core.history``).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from secrets_ledger.domain.log_leaves import WRONG_SHAPE, other_root, stored_leaves
from secrets_ledger.domain.merkle_log import LogHead

CHUNK = 4096  # leaves per digest: 245 digests for 10^6 leaves; 4096 rows summed at once


_LENGTH, _VERSION_AND_LENGTH = struct.Struct(">I"), struct.Struct(">qI")


def row_frame(record_id: str, record_version: int, hashes: bytes) -> bytes:
    """A stored leaf row as its chunk's digest takes it, each field's length first (the
    SQL adapters frame their rows identically)."""
    record = record_id.encode()
    return (_LENGTH.pack(len(record)) + record
            + _VERSION_AND_LENGTH.pack(record_version, len(hashes)) + hashes)


def tenant_part(tenant_id: str, parts: int) -> int:
    """The part of a tenant's log: its stream id's last byte modulo ``parts``, as the
    replay's loading processes cut the streams (``get_byte(uuid_send(id), 15)``)."""
    try:
        return (UUID(tenant_id).int & 0xFF) % parts
    except ValueError:  # not a stream id (an edited read record): one part, any
        return 0


@dataclass(frozen=True)
class LogSnapshot:
    """The stored logs at one position of the store, read in one statement."""

    position: int
    sizes: dict[str, int]
    checkpoints: dict[str, tuple[int, bytes]]


@dataclass
class FoldedLog:
    head: LogHead = field(default_factory=LogHead)
    digests: list[bytes] = field(default_factory=list)
    chunk: Any = None  # the running digest of the chunk under way (none once finished)


@dataclass
class LogFold:
    """The records up to the snapshot's position, folded into each tenant's log (of the
    tenants of one part, when cut into ``parts``)."""

    snapshot: LogSnapshot
    part: int = 0
    parts: int = 1
    chunk: int = CHUNK
    logs: dict[str, FoldedLog] = field(default_factory=dict)
    failure: tuple[int, str] | None = None
    _kept: dict[str, bool] = field(default_factory=dict)

    def part_of(self, part: int, parts: int) -> LogFold:
        """A fresh fold of the tenants of one part of ``parts``."""
        return LogFold(self.snapshot, part, parts, self.chunk)

    def add_batch(self, batch: Sequence[tuple[int, Any]]) -> None:
        """Folds the records of a batch (decoded, in store order)."""
        until = self.snapshot.position
        for position, event in batch:
            if position > until:
                return
            self.add(position, event)

    def add(self, position: int, event: Any) -> None:
        leaves = stored_leaves(event)
        if leaves is None:
            self._fail(position, WRONG_SHAPE)
            return
        for tenant_id, record_id, version, leaf in leaves:
            if self.parts > 1 and not self._keeps(tenant_id):
                continue
            log = self.logs.get(tenant_id)
            if log is None:
                log = self.logs[tenant_id] = FoldedLog(chunk=hashlib.sha256())
            head = log.head
            log.chunk.update(row_frame(record_id, version, head.append(leaf)))
            if head.size % self.chunk == 0:
                log.digests.append(log.chunk.digest())
                log.chunk = hashlib.sha256()
            checkpoint = self.snapshot.checkpoints.get(tenant_id)
            if checkpoint is not None and checkpoint[0] == head.size and checkpoint[1] != (
                    head.root):
                self._fail(position, other_root(tenant_id, head.size))

    def _keeps(self, tenant_id: str) -> bool:
        kept = self._kept.get(tenant_id)
        if kept is None:
            kept = self._kept[tenant_id] = tenant_part(tenant_id, self.parts) == self.part
        return kept

    def _fail(self, position: int, reason: str) -> None:
        if self.failure is None or position < self.failure[0]:
            self.failure = (position, reason)

    def finish(self) -> None:
        """Closes every log's last chunk (and leaves the fold picklable, to merge)."""
        for log in self.logs.values():
            if log.chunk is not None:
                if log.head.size % self.chunk:
                    log.digests.append(log.chunk.digest())
                log.chunk = None
        self._kept.clear()

    def merge(self, other: LogFold) -> None:
        """Takes in a finished fold of another part (disjoint tenants)."""
        self.logs.update(other.logs)
        if other.failure is not None:
            self._fail(*other.failure)

    def differences(self, stored: dict[str, list[bytes]]) -> list[str]:
        """What differs between the finished fold and the stored logs (``stored``: each
        log's digests per ``chunk`` rows, up to the snapshot's size), one line per log."""
        found = []
        sizes, checkpoints = self.snapshot.sizes, self.snapshot.checkpoints
        for tenant_id in sorted(set(sizes) | set(self.logs) | set(checkpoints)):
            log = self.logs.get(tenant_id, FoldedLog())
            size = sizes.get(tenant_id, 0)
            if size > log.head.size:
                found.append(f"tenant {tenant_id}'s log holds leaves beyond its records")
            elif size < log.head.size:
                found.append(f"leaf {size} of tenant {tenant_id}'s log is missing")
            elif stored.get(tenant_id, []) != log.digests:
                found.append(f"tenant {tenant_id}'s log does not hold what its records"
                             " recompute to")
            if checkpoints.get(tenant_id, (0, b""))[0] > log.head.size:
                found.append(f"tenant {tenant_id}'s signed checkpoint is larger than its"
                             " records")
        return found

    @property
    def leaves(self) -> int:
        return sum(log.head.size for log in self.logs.values())
