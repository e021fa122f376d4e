"""Value reads, recorded durably before the value leaves the ledger.

The reads of one group commit are one event of an aggregate of their own
(``ValueReads``), so that recording them never contends with the tenants' writers for
their streams' next versions, and a busy server stores one event per batch of reads, not
one per read; they join the audit trail through the same event store (and so survive
replay). ``ValueRead`` (one read per aggregate) is how reads were recorded before; its
stored events still project.

Each writer chains the records it stores (``read_chain.ReadChain``): a record carries its
writer's chain id, its sequence number in that chain, the hash of the record before it
and its own hash, so that deleting, editing or reordering a stored record is detected by
``verify`` (``read_chain.ReadChainsCheck``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast
from uuid import uuid4

from eventsourcing.domain import Aggregate

from secrets_ledger.domain.read_chain import ReadChain, ReadLink


@dataclass(frozen=True)
class ReadRecord:
    """Who read which version of which key, and in which request."""

    tenant_id: str
    key: str
    version: int
    actor: str
    request_id: str


class ValueReads(Aggregate):
    def __init__(self, reads: list[dict[str, Any]], chain: str = "", sequence: int = 0,
                 previous: str = "", hash: str = "",
                 tenants: dict[str, list[Any]] | None = None) -> None:
        self.reads = reads
        self.link = ReadLink(chain, sequence, previous, hash, tenants or {})

    class Recorded(Aggregate.Created):
        reads: list[dict[str, Any]]  # ReadRecord fields, in the order they were answered
        # Absent from records stored before the read chains (``read_chain``).
        chain: str
        sequence: int
        previous: str
        hash: str
        tenants: dict[str, list[Any]]  # read_chain.TenantLinks

    @classmethod
    def record(cls, reads: list[ReadRecord], at: datetime,
               chain: ReadChain | None = None) -> ValueReads:
        """The reads as one record, next in ``chain`` (which advances only once the record
        is stored: ``chain.stored(record.link)``); a chain of its own if none is given."""
        # The fields by hand: ``dataclasses.asdict`` copies recursively, a cost on every
        # read the ledger answers.
        rows = [{"tenant_id": read.tenant_id, "key": read.key, "version": read.version,
                 "actor": read.actor, "request_id": read.request_id} for read in reads]
        link = (chain or ReadChain()).next_link(at, rows)
        return cls._create(cls.Recorded, id=uuid4(), timestamp=at, reads=rows,
                           chain=link.chain, sequence=link.sequence, previous=link.previous,
                           hash=link.hash, tenants=link.tenants)


class ValueRead(Aggregate):
    """One read per aggregate: no longer recorded, still read back from older stores."""

    def __init__(self, tenant_id: str, key: str, version: int, actor: str,
                 request_id: str) -> None:
        self.tenant_id = tenant_id
        self.key = key
        self.read_version = version
        self.actor = actor
        self.request_id = request_id

    class Recorded(Aggregate.Created):
        tenant_id: str
        key: str
        version: int
        actor: str
        request_id: str


class MovedReads(Aggregate):
    """One tenant's part of a read record, copied into another tenant group with the
    tenant when it moved (``core.tenant_move``): the same record id and time, so the same
    leaf in the tenant's transparency log there. It stands outside the writers' read
    chains: the record it was cut from stays whole, and chained, where it was."""

    def __init__(self, reads: list[dict[str, Any]]) -> None:
        self.reads = reads

    class Copied(Aggregate.Created):
        reads: list[dict[str, Any]]  # ReadRecord fields, of one tenant

    @classmethod
    def copied(cls, record: Any, tenant_id: str) -> MovedReads.Copied:
        """The event that stores, in the tenant's new group, its reads of ``record`` (a
        ``ValueReads.Recorded`` or ``ValueRead.Recorded`` of its old group)."""
        reads = ([read for read in record.reads if read["tenant_id"] == tenant_id]
                 if isinstance(record, ValueReads.Recorded) else
                 [{"tenant_id": record.tenant_id, "key": record.key, "version": record.version,
                   "actor": record.actor, "request_id": record.request_id}])
        aggregate = cls._create(cls.Copied, id=record.originator_id,
                                timestamp=record.timestamp, reads=reads)
        return cast(MovedReads.Copied, aggregate.collect_events()[0])
