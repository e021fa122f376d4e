"""Recomputes the hash chains from the stored events, with no decryption key.

The reader decodes rows with the library's mapper (the events hold ciphertext, never
plaintext, and no library cipher is configured), recomputes each link and compares it
with what the next event recorded. Every failure names the 1-based stream position of
the first event whose link does not hold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from uuid import UUID

from eventsourcing.utils import resolve_topic

from secrets_ledger.domain.chain import GENESIS, recompute_hash
from secrets_ledger.domain.reads import ValueRead, ValueReads
from secrets_ledger.domain.tenant import Tenant
from secrets_ledger.service.storage import LedgerEvents


@dataclass
class ChainCheck:
    """Folds one tenant stream, event by event, into a verdict."""

    tenant_id: str
    name: str | None = None
    events: int = 0
    head: str = GENESIS
    first_bad_position: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.first_bad_position is None

    def fail(self, position: int, reason: str) -> None:
        if self.ok:
            self.first_bad_position, self.reason = position, reason

    def add(self, version: int, decode: Callable[[], Any]) -> None:
        self.events += 1
        if not self.ok:
            return
        if version != self.events:
            self.fail(self.events, f"event {self.events} is missing from the stream")
            return
        try:
            event = decode()
        except Exception:  # a row edited into something undecodable
            self.fail(version, "the stored event cannot be decoded")
            return
        if not isinstance(event, Tenant.Event):
            self.fail(version, "the stored event is not a tenant event")
        elif event.prev_hash != self.head:
            self.fail(version, "the event does not link to the event before it")
        elif recompute_hash(event) != event.hash:
            self.fail(version, "the event's content does not match its hash")
        else:
            self.head = event.hash
            if isinstance(event, Tenant.Opened):
                self.name = event.name

    def as_dict(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "events": self.events, "head": self.head}
        return {"ok": False, "events": self.events,
                "first_bad_position": self.first_bad_position, "reason": self.reason}


def verify_tenant(events: LedgerEvents, tenant_id: UUID) -> ChainCheck:
    check = ChainCheck(str(tenant_id))
    for stored in events.recorder.select_events(tenant_id):
        check.add(stored.originator_version, partial(events.mapper.to_domain_event, stored))
    return check


def _records_reads(topic: str) -> bool:
    """Whether a stored topic names an event of read records (by the class it resolves
    to: events stored under older module names resolve too). A topic edited into one
    of these hides nothing: the tenant stream it was cut from shows a missing event."""
    try:
        return resolve_topic(topic) in (ValueReads.Recorded, ValueRead.Recorded)
    except Exception:  # an edited, unresolvable topic: the tenant's chain check says so
        return False


@dataclass
class FullScan:
    checks: dict[str, ChainCheck] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks.values())


def verify_all(events: LedgerEvents, page_size: int = 5000,
               progress: Callable[[int], None] | None = None) -> FullScan:
    """One pass over every notification, folding each tenant stream as it goes."""
    scan = FullScan()
    position = 0
    while True:
        page: Iterable[Any] = events.recorder.select_notifications(
            start=position, limit=page_size, inclusive_of_start=False
        )
        page = list(page)
        if not page:
            return scan
        for notification in page:
            if _records_reads(notification.topic):
                continue  # reads are not part of any tenant stream
            key = str(notification.originator_id)
            check = scan.checks.setdefault(key, ChainCheck(key))
            check.add(notification.originator_version,
                      partial(events.mapper.to_domain_event, notification))
        position = page[-1].id
        if progress is not None:
            progress(len(page))
