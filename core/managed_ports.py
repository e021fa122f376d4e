"""The rows of managed secrets and mounts as the core's queries read them from the views
(``ports.ViewQueries``); re-exported by ``core.ports``."""

from __future__ import annotations

from typing import Any, NamedTuple


class ManagedVersion(NamedTuple):
    version: int  # the ledger's
    client_id: str
    created_at: str
    state: str  # active, deleted (native delete) or destroyed
    deleted_at: str | None  # soft-deleted on its own (Vault's delete), when


class MountRow(NamedTuple):
    path: str
    mount_id: str
    type: str
    options: dict[str, Any]
    config: dict[str, Any]
    enabled_at: str


class ManagedRow(NamedTuple):
    key: str
    name: str
    suffix: str
    created_at: str
    changed_at: str
    description: str | None
    kms_key_id: str | None
    tags: list[list[str]] | None
    labels: dict[str, int]  # in the order attached
    deleted_at: str | None
    purge_after: str | None
    versions: list[ManagedVersion]  # of the incarnation
    base: int = 0
    settings: dict[str, Any] | None = None
