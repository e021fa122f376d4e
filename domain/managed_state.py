"""What the tenant aggregate knows of one managed secret (``domain.managed``): kept apart
so that the aggregate can hold it without importing the commands that change it."""

from __future__ import annotations

from typing import Any, TypedDict


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
    deleted: list[int]  # versions soft-deleted one by one (Vault's delete), sorted
    settings: dict[str, Any]  # a front end's per-secret knobs (Vault: max_versions ...)


class MountState(TypedDict):
    """A mount of a tenant (Vault's ``sys/mounts``): its secrets live in the space
    ``kv:<mount_id>``, so that a mount enabled again under the same path starts empty."""

    mount_id: str
    type: str
    options: dict[str, Any]
    config: dict[str, Any]
