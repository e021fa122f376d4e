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


TenantLinks = dict[str, list[Any]]
"""Per tenant whose reads a record holds: [its sequence among the records of this chain
that hold that tenant's reads, the hash of the one before] (a tenant's own thread)."""


@dataclass(frozen=True)
class ReadLink:
    """Where a record goes in its writer's chain of read records, and its hash."""

    chain: str
    sequence: int
    previous: str
    hash: str
    tenants: TenantLinks = field(default_factory=dict)


def read_link_hash(chain: str, sequence: int, previous: str, at: datetime,
                   reads: list[dict[str, Any]], tenants: TenantLinks | None = None) -> str:
    body = {"chain": chain, "sequence": sequence, "previous": previous,
            "at": at.isoformat(), "reads": reads}
    if tenants is not None:
        body["tenants"] = tenants
    return hashlib.sha256(_CANONICAL.encode(body).encode("utf-8")).hexdigest()


@dataclass
class ReadChain:
    """One writer's chain: the link its next record gets, advanced once that record is
    stored (a batch retried after a conflict links the same place again)."""

    chain: str = field(default_factory=lambda: uuid.uuid4().hex)
    sequence: int = 0
    head: str = GENESIS
    tenant_heads: dict[str, tuple[int, str]] = field(default_factory=dict)

    def next_link(self, at: datetime, reads: list[dict[str, Any]]) -> ReadLink:
        sequence = self.sequence + 1
        tenants: TenantLinks = {}
        for read in reads:
            tenant = read["tenant_id"]
            if tenant not in tenants:
                last, previous = self.tenant_heads.get(tenant, (0, GENESIS))
                tenants[tenant] = [last + 1, previous]
        return ReadLink(self.chain, sequence, self.head,
                        read_link_hash(self.chain, sequence, self.head, at, reads, tenants),
                        tenants)

    def stored(self, link: ReadLink) -> None:
        self.sequence, self.head = link.sequence, link.hash
        for tenant, (sequence, _) in link.tenants.items():
            self.tenant_heads[tenant] = (sequence, link.hash)


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
        elif read_link_hash(chain, sequence, previous, event.timestamp, event.reads,
                            getattr(event, "tenants", None)) != stored_hash:
            self.fail(position, "the read record's content does not match its hash")
        self.heads[chain] = (sequence if isinstance(sequence, int) else last_sequence,
                             str(stored_hash))

    def as_dict(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "records": self.records, "chains": len(self.heads)}
        return {"ok": False, "records": self.records,
                "first_bad_position": self.first_bad_position, "reason": self.reason}


@dataclass
class TenantReadsCheck(Verdict):
    """Folds the stored read records, in store order, into a verdict on one tenant's
    reads: each record holding them is intact, and none is missing from (or out of
    order in) that tenant's thread through its chain. A record without this tenant's
    reads is not judged here: another tenant's damage is not this tenant's to learn (the
    store-wide ``ReadChainsCheck`` judges every record)."""

    tenant_id: str
    records: int = 0
    heads: dict[str, tuple[int, str]] = field(default_factory=dict)  # chain -> (seq, hash)

    def add(self, position: int, event: Any) -> None:
        try:
            tenants = getattr(event, "tenants", None)
            if tenants is None:
                if any(read["tenant_id"] == self.tenant_id for read in event.reads):
                    self.records += 1
                    if self.heads:
                        self.fail(position, "an unchained read record after the chains began")
                return
            link = tenants.get(self.tenant_id)
            if link is None:
                return
            self.records += 1
            sequence, previous = link
            last_sequence, last_hash = self.heads.get(event.chain, (0, GENESIS))
            if sequence <= last_sequence:
                self.fail(position, "a read record out of order")
            elif sequence != last_sequence + 1 or previous != last_hash:
                self.fail(position, "a read record before this one is missing")
            elif read_link_hash(event.chain, event.sequence, event.previous, event.timestamp,
                                event.reads, tenants) != event.hash:
                self.fail(position, "the read record's content does not match its hash")
            self.heads[event.chain] = (sequence, event.hash)
        except Exception:  # a field renamed, removed or of another type: no traceback
            self.fail(position, "the read record has the wrong shape")
