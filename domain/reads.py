"""A value read, recorded durably before the value leaves the ledger.

Each read is its own one-event aggregate, so that recording it never contends with the
tenant's writers for the tenant stream's next version; it joins the audit trail through
the same event store (and so survives replay).
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate


class ValueRead(Aggregate):
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

    @classmethod
    def record(cls, tenant_id: UUID, key: str, version: int, actor: str, request_id: str,
               at: datetime) -> ValueRead:
        return cls._create(cls.Recorded, id=uuid4(), timestamp=at, tenant_id=str(tenant_id),
                           key=key, version=version, actor=actor, request_id=request_id)
