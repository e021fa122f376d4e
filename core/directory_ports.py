"""The tenant directory: which tenant group holds each tenant (stored in the home group's
storage, ``adapters.sql.directory``). A tenant it does not list lives in the home group."""

from __future__ import annotations

from typing import NamedTuple, Protocol


class Listing(NamedTuple):
    group: str
    moving_to: str | None  # a move under way: calls on the tenant wait for it to end


class TenantDirectory(Protocol):
    def group_of(self, tenant: str) -> str | None:
        """The group recorded for the tenant (None: not listed, so the home group)."""

    def listing(self, tenant: str) -> Listing | None:
        """The tenant's row (None: not listed, so the home group, and no move)."""

    def place(self, tenant: str, group: str, at: str) -> str:
        """Records the tenant in ``group`` unless it is recorded already (two processes
        opening it at once agree); returns the group recorded."""

    def entries(self) -> dict[str, str]:
        """Every tenant listed, with its group."""

    def record_copy(self, tenant: str, group: str, upto: int) -> None:
        """The tenant's stream versions up to ``upto`` in ``group`` are copies, made when
        it moved there (each change is served once, by the group that made it)."""

    def copies(self) -> dict[tuple[str, str], int]:
        """(tenant, group) -> the stream version up to which the group holds copies."""

    def moves(self) -> int:
        """How many moves began or ended so far (each one changes it)."""

    def begin_move(self, tenant: str, source: str, target: str, at: str) -> bool:
        """Marks the tenant as moving to ``target`` if it is in ``source`` now (unlisted
        counts as the home group's) and not moving elsewhere; False if not."""

    def move(self, tenant: str, source: str, target: str, at: str) -> bool:
        """Lists the tenant in ``target``, no longer moving, if it is in ``source`` now;
        False if it was not."""
