"""The chains of read records: each writer (one per server process) links the records of
value reads it stores, one record per group commit, into a chain of its own.

A record's hash covers its chain id, its sequence number, the hash of the record before
it, its time and every read in it, so that ``ReadChainsCheck``, folding the stored
records in store order, detects a record deleted (a gap in the sequence, or a broken
link), edited (its hash), reordered (a sequence going back), or made to look older
(unchained records are accepted only before the first chained one). What a chain cannot
show is the deletion of its own last records; signed checkpoints of the history will.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from secrets_ledger.domain.chain import GENESIS
from secrets_ledger.domain.verification import Verdict

_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class ReadLink:
    """Where a record goes in its writer's chain of read records, and its hash."""

    chain: str
    sequence: int
    previous: str
    hash: str


def read_link_hash(chain: str, sequence: int, previous: str, at: datetime,
                   reads: list[dict[str, Any]]) -> str:
    body = {"chain": chain, "sequence": sequence, "previous": previous,
            "at": at.isoformat(), "reads": reads}
    return hashlib.sha256(_CANONICAL.encode(body).encode("utf-8")).hexdigest()


@dataclass
class ReadChain:
    """One writer's chain: the link its next record gets, advanced once that record is
    stored (a batch retried after a conflict links the same place again)."""

    chain: str = field(default_factory=lambda: uuid.uuid4().hex)
    sequence: int = 0
    head: str = GENESIS

    def next_link(self, at: datetime, reads: list[dict[str, Any]]) -> ReadLink:
        sequence = self.sequence + 1
        return ReadLink(self.chain, sequence, self.head,
                        read_link_hash(self.chain, sequence, self.head, at, reads))

    def stored(self, link: ReadLink) -> None:
        self.sequence, self.head = link.sequence, link.hash


@dataclass
class ReadChainsCheck(Verdict):
    """Folds the stored read records, in store order, into a verdict."""

    records: int = 0
    unchained: int = 0
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)  # chain -> (seq, hash)

    def add(self, position: int, event: Any) -> None:
        """Adds the record stored at ``position`` (a decoded ``ValueReads.Recorded``)."""
        self.records += 1
        try:
            chain, sequence, previous, stored_hash = (
                getattr(event, "chain", None), getattr(event, "sequence", None),
                getattr(event, "previous", None), getattr(event, "hash", None))
            if chain is None and sequence is None and previous is None and stored_hash is None:
                if self.heads:
                    self.fail(position, "an unchained read record after the chains began")
                self.unchained += 1
                return
            self._check_link(position, event, str(chain), sequence, previous, stored_hash)
        except Exception:  # a field renamed, removed or of another type: no traceback
            self.fail(position, "the read record has the wrong shape")

    def _check_link(self, position: int, event: Any, chain: str, sequence: Any,
                    previous: Any, stored_hash: Any) -> None:
        last_sequence, last_hash = self.heads.get(chain, (0, GENESIS))
        if not isinstance(sequence, int) or sequence <= last_sequence:
            self.fail(position, "a read record out of order (its chain went back)")
        elif sequence != last_sequence + 1 or previous != last_hash:
            self.fail(position, f"read record {last_sequence + 1} of its chain is missing")
        elif read_link_hash(chain, sequence, previous, event.timestamp,
                            event.reads) != stored_hash:
            self.fail(position, "the read record's content does not match its hash")
        self.heads[chain] = (sequence if isinstance(sequence, int) else last_sequence,
                             str(stored_hash))

    def as_dict(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "records": self.records, "chains": len(self.heads)}
        return {"ok": False, "records": self.records,
                "first_bad_position": self.first_bad_position, "reason": self.reason}
