"""Where each tenant lives when the ledger spans several tenant groups: the directory (a
port, stored in the home group) and the rule that places a new tenant.

A group is a complete ledger over storage of its own (its events table and its lock, its
views and projection positions, its transparency logs, its tokens). The directory is the
only place that knows which group holds a tenant: a tenant it does not list lives in the
home group, so that a deployment that adds groups keeps its tenants where they are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
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

    def moves(self) -> int:
        """How many moves began or ended so far (each one changes it)."""

    def begin_move(self, tenant: str, source: str, target: str, at: str) -> bool:
        """Marks the tenant as moving to ``target`` if it is in ``source`` now (unlisted
        counts as the home group's) and not moving elsewhere; False if not."""

    def move(self, tenant: str, source: str, target: str, at: str) -> bool:
        """Lists the tenant in ``target``, no longer moving, if it is in ``source`` now;
        False if it was not."""


def placement(tenant: str, groups: Sequence[str]) -> str:
    """The group a new tenant is placed in: rendezvous hashing, the group whose
    SHA-256(group, NUL, tenant) is highest. Every process computes the same answer without
    asking anyone; tenants spread evenly; adding a group takes new tenants only from
    placements that would have gone elsewhere, and moves no existing tenant (the
    directory keeps each where it was placed)."""
    return max(groups, key=lambda group: hashlib.sha256(
        f"{group}\0{tenant}".encode()).digest())
