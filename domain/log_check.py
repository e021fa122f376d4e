"""Verification of the tenants' transparency logs against the stored records: folding the
records in store order, recompute every leaf and the subtrees it completes, and compare
them with the stored rows, each log's head, and its latest signed checkpoint's root.

A leaf edited, dropped, added, moved or pointing at another record, an interior hash
edited (which would make proofs lie), a head or a checkpoint whose root is not the
records' root: each is named at the store position of the first record it concerns.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from secrets_ledger.domain.log_leaves import WRONG_SHAPE, other_root, stored_leaves
from secrets_ledger.domain.merkle_log import LogHead
from secrets_ledger.domain.verification import Verdict

PAGE = 256  # rows buffered per log: bounded memory however many logs a scan meets
StoredRow = tuple[int, str, int, bytes]  # index, record id, record version, hashes
FetchRows = Callable[[str, int, int], Sequence[StoredRow]]
"""(tenant id, start, end) -> the stored rows of that range of its log, in order."""


@dataclass
class LogCheck(Verdict):
    fetch: FetchRows
    tenant_id: str | None = None  # one tenant's log, or every log
    heads: dict[str, LogHead] = field(default_factory=dict)
    _stored: dict[str, deque[StoredRow]] = field(default_factory=dict)
    _checkpoint_roots: dict[str, tuple[int, bytes]] = field(default_factory=dict)

    @property
    def leaves(self) -> int:
        return sum(head.size for head in self.heads.values())

    def expect_checkpoint(self, tenant_id: str, size: int, root: bytes) -> None:
        """The latest checkpoint signed of a log: its root must be the records' at its size."""
        if size == 0:
            return
        self._checkpoint_roots[tenant_id] = (size, root)

    def add(self, position: int, event: Any) -> None:
        """Adds the record stored at ``position`` (decoded)."""
        leaves = stored_leaves(event)
        if leaves is None:
            self.fail(position, WRONG_SHAPE)
            return
        for tenant_id, record_id, version, leaf in leaves:
            if self.tenant_id is not None and tenant_id != self.tenant_id:
                continue
            head = self.heads.setdefault(tenant_id, LogHead())
            index = head.size
            row = head.append(leaf)
            stored = self._next(tenant_id, index)
            if stored is None:
                self.fail(position, f"leaf {index} of tenant {tenant_id}'s log is missing")
            elif stored[:3] != (index, record_id, version):
                self.fail(position, f"leaf {index} of tenant {tenant_id}'s log is not this"
                                    " record's")
            elif stored[3] != row:
                self.fail(position, f"leaf {index} of tenant {tenant_id}'s log does not hash"
                                    " to what its record recomputes to")
            checkpoint = self._checkpoint_roots.get(tenant_id)
            if checkpoint is not None and checkpoint[0] == head.size and checkpoint[1] != (
                    head.root):
                self.fail(position, other_root(tenant_id, head.size))

    def _next(self, tenant_id: str, index: int) -> StoredRow | None:
        buffered = self._stored.get(tenant_id)
        if not buffered:
            buffered = self._stored[tenant_id] = deque(self.fetch(tenant_id, index,
                                                                  index + PAGE))
        return buffered.popleft() if buffered else None

    def finish(self, position: int, logs: Sequence[str]) -> None:
        """After the last record (``logs``: the tenants with a stored log): no log holds
        more than its records, and no checkpoint is of a size they never reached."""
        for tenant_id in sorted(set(logs) | set(self.heads) | set(self._checkpoint_roots)):
            head = self.heads.get(tenant_id, LogHead())
            if self._next(tenant_id, head.size) is not None:
                self.fail(position, f"tenant {tenant_id}'s log holds leaves beyond its records")
            checkpoint = self._checkpoint_roots.get(tenant_id)
            if checkpoint is not None and checkpoint[0] > head.size:
                self.fail(position, f"tenant {tenant_id}'s signed checkpoint is larger than"
                                    " its records")

    def as_dict(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "logs": len(self.heads), "leaves": self.leaves}
        return {"ok": False, "first_bad_position": self.first_bad_position,
                "reason": self.reason}
