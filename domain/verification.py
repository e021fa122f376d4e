"""Verification of a tenant's history: recompute each link of the hash chain from what
was stored (ciphertext and metadata only, so no decryption key is needed) and name the
first event whose link does not hold."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from secrets_ledger.domain.chain import GENESIS, recompute_hash
from secrets_ledger.domain.tenant import Tenant


@dataclass(kw_only=True)
class Verdict:
    """The first damaged row a check found (its position, and what is wrong), if any."""

    first_bad_position: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        return self.first_bad_position is None

    def fail(self, position: int, reason: str) -> None:
        if self.ok:
            self.first_bad_position, self.reason = position, reason


@dataclass
class ChainCheck(Verdict):
    """Folds one tenant stream, event by event, into a verdict."""

    tenant_id: str
    name: str | None = None
    events: int = 0
    head: str = GENESIS

    def add(self, version: int, decode: Callable[[], Any]) -> None:
        """Adds the stored event at stream position ``version``; ``decode`` turns the
        stored row into its event."""
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
            return
        try:
            linked, expected = event.prev_hash == self.head, recompute_hash(event) == event.hash
        except Exception:  # a field renamed, removed or of another type: no traceback
            self.fail(version, "the stored event has the wrong shape (a field is missing,"
                               " renamed or of the wrong type)")
            return
        if not linked:
            self.fail(version, "the event does not link to the event before it")
        elif not expected:
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
