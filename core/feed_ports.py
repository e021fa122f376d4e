"""What the change feed needs from storage: the projected changes, in store order."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import NamedTuple, Protocol


class ChangeRow(NamedTuple):
    """One change as subscribers see it: metadata only, never a value."""

    position: int  # store order (the audit trail's), and the cursor that resumes after it
    tenant: str
    at: str
    action: str
    key: str | None
    version: int | None
    actor: str
    request_id: str
    stream_version: int  # the tenant stream's version that made it: gap-free per tenant
    log_index: int | None  # that record's leaf in the tenant's transparency log


class ChangeRows(Protocol):
    def projected(self) -> int:
        """The last position every view holds: a change at or before it is projected.
        Like ``changes``, answered once what it covers is as safe as an acknowledged
        write."""

    def changes(self, tenant_id: str | None, after: int, limit: int, *,
                upto: int | None = None, prefix: str = "",
                actions: Collection[str] | None = None) -> tuple[list[ChangeRow], int]:
        """The changes ``after`` < position <= ``upto`` (None: ``projected()``, read in
        the same snapshot) of one tenant (or of every one when None), in order: at most
        ``limit``, filtered by key prefix and action; and the bound they were read to.
        Answered once they are as safe as an acknowledged write (a commit is visible on
        PostgreSQL before its synchronous standby has it)."""


class Advances(Protocol):
    """The projector, as the feed hears of what it applied."""

    def on_advance(self, hook: Callable[[], None]) -> None:
        """Calls ``hook`` (from the projector's thread) after each batch it applies."""
