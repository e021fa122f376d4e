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
from typing import Protocol


class TenantDirectory(Protocol):
    def group_of(self, tenant: str) -> str | None:
        """The group recorded for the tenant (None: not listed, so the home group)."""

    def place(self, tenant: str, group: str, at: str) -> str:
        """Records the tenant in ``group`` unless it is recorded already (two processes
        opening it at once agree); returns the group recorded."""

    def entries(self) -> dict[str, str]:
        """Every tenant listed, with its group."""


def placement(tenant: str, groups: Sequence[str]) -> str:
    """The group a new tenant is placed in: rendezvous hashing, the group whose
    SHA-256(group, NUL, tenant) is highest. Every process computes the same answer without
    asking anyone; tenants spread evenly; adding a group takes new tenants only from
    placements that would have gone elsewhere, and moves no existing tenant (the
    directory keeps each where it was placed)."""
    return max(groups, key=lambda group: hashlib.sha256(
        f"{group}\0{tenant}".encode()).digest())
