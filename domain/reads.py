"""Value reads, recorded durably before the value leaves the ledger.

The reads of one group commit are one event of an aggregate of their own
(``ValueReads``), so that recording them never contends with the tenants' writers for
their streams' next versions, and a busy server stores one event per batch of reads, not
one per read; they join the audit trail through the same event store (and so survive
replay). ``ValueRead`` (one read per aggregate) is how reads were recorded before; its
stored events still project.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import uuid4

from eventsourcing.domain import Aggregate


@dataclass(frozen=True)
class ReadRecord:
    """Who read which version of which key, and in which request."""

    tenant_id: str
    key: str
    version: int
    actor: str
    request_id: str


class ValueReads(Aggregate):
    def __init__(self, reads: list[dict[str, Any]]) -> None:
        self.reads = reads

    class Recorded(Aggregate.Created):
        reads: list[dict[str, Any]]  # ReadRecord fields, in the order they were answered

    @classmethod
    def record(cls, reads: list[ReadRecord], at: datetime) -> ValueReads:
        # The fields by hand: ``dataclasses.asdict`` copies recursively, a cost on every
        # read the ledger answers.
        return cls._create(cls.Recorded, id=uuid4(), timestamp=at, reads=[
            {"tenant_id": read.tenant_id, "key": read.key, "version": read.version,
             "actor": read.actor, "request_id": read.request_id} for read in reads])


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
