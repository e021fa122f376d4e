"""Where each tenant lives when the ledger spans several tenant groups: the rule that
places a new tenant (the directory that records it is ``directory_ports``).

A group is a complete ledger over storage of its own (its events table and its lock, its
views and projection positions, its transparency logs, its tokens). The directory is the
only place that knows which group holds a tenant: a tenant it does not list lives in the
home group, so that a deployment that adds groups keeps its tenants where they are.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def placement(tenant: str, groups: Sequence[str]) -> str:
    """The group a new tenant is placed in: rendezvous hashing, the group whose
    SHA-256(group, NUL, tenant) is highest. Every process computes the same answer without
    asking anyone; tenants spread evenly; adding a group takes new tenants only from
    placements that would have gone elsewhere, and moves no existing tenant (the
    directory keeps each where it was placed)."""
    return max(groups, key=lambda group: hashlib.sha256(
        f"{group}\0{tenant}".encode()).digest())
