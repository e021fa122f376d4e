"""What the tenant aggregate knows of one managed secret (``domain.managed``): kept apart
so that the aggregate can hold it without importing the commands that change it."""

from __future__ import annotations

from typing import TypedDict


class ManagedState(TypedDict):
    space: str
    name: str
    suffix: str  # the incarnation's random suffix (an ARN's last six characters)
    base: int  # the key's last version before this incarnation began
    created_at: str
    description: str | None
    kms_key_id: str | None
    tags: list[list[str]] | None  # [[key, value], ...] as first set; None: never tagged
    ids: dict[str, int]  # client version id -> ledger version: the recent and labelled ones
    labels: dict[str, int]  # staging label -> ledger version
    deleted_at: str | None
    purge_after: str | None  # scheduled deletion: gone once this time has passed
