"""Vault's KV version 2 over managed secrets (``domain.managed``), in a mount's space.

A KV key is a managed secret whose versions are numbered from 1 in each incarnation
(Vault version = ledger version - the incarnation's ``base``); its current version is
its latest. ``DELETE metadata`` purges it, so the next write starts again at 1. Writes
take Vault's check-and-set: ``cas=N`` holds when the current version is N, ``cas=0``
when the key has no version in this incarnation. A write past ``max_versions`` destroys
the oldest versions in the same save.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from secrets_ledger.domain import managed
from secrets_ledger.domain.changes import RequestContext, Sealer
from secrets_ledger.domain.errors import InvalidRequest, SecretNotFound
from secrets_ledger.domain.managed_events import (
    ManagedSecretCreated,
    ManagedSettingsChanged,
    ManagedVersionsDeleted,
    ManagedVersionsDestroyed,
    ManagedVersionsUndeleted,
)
from secrets_ledger.domain.managed_state import ManagedState, MountState
from secrets_ledger.domain.mounts import space_of
from secrets_ledger.domain.tenant import Tenant

CAS_MISMATCH = "check-and-set parameter did not match the current version"


def kv_key(mount: MountState, path: str) -> str:
    return managed.managed_key(space_of(mount["mount_id"]), path)


def current_version(tenant: Tenant, key: str, state: ManagedState) -> int:
    """The Vault version of the key's latest version (0: none in this incarnation)."""
    key_state = tenant.secrets.get(key)
    latest = key_state["latest"] if key_state is not None else 0
    return max(0, latest - state["base"])


def setting(mount: MountState, state: ManagedState | None, name: str) -> Any:
    """A key's setting, else its mount's (``max_versions`` 0: unbounded)."""
    own = None if state is None else state["settings"].get(name)
    return own if own not in (None, 0, False) else mount["config"].get(name)


def _incarnation(tenant: Tenant, mount: MountState, path: str, ctx: RequestContext,
                 at: datetime) -> tuple[str, ManagedState]:
    key = kv_key(mount, path)
    state = managed.live_secret(tenant, key, at)
    if state is None:
        key_state = tenant.secrets.get(key)
        tenant.record(ManagedSecretCreated, ctx, at, key=key, space=space_of(mount["mount_id"]),
                      name=path, suffix="", base=key_state["latest"] if key_state else 0,
                      description=None, kms_key_id=None, tags=None)
        state = tenant.managed[key]
    return key, state


def write(tenant: Tenant, mount: MountState, path: str, cas: int | None, seal: Sealer,
          ctx: RequestContext, at: datetime) -> tuple[int, list[int]]:
    """Writes the next version; returns its Vault version and the ledger versions that
    ``max_versions`` destroyed with it (their data keys go with the save)."""
    tenant.check_not_shredded()
    key = kv_key(mount, path)
    existing = managed.live_secret(tenant, key, at)
    if cas is None and setting(mount, existing, "cas_required"):
        raise InvalidRequest("check-and-set parameter required for this call")
    current = 0 if existing is None else current_version(tenant, key, existing)
    if cas is not None and cas != current:
        raise InvalidRequest(CAS_MISMATCH)
    key, state = _incarnation(tenant, mount, path, ctx, at)
    number = managed.write_version(tenant, key, managed.NewVersion(
        str(current + 1), [managed.CURRENT]), seal, ctx, at)
    return number - state["base"], _trim(tenant, mount, key, state, ctx, at)


def _trim(tenant: Tenant, mount: MountState, key: str, state: ManagedState,
          ctx: RequestContext, at: datetime) -> list[int]:
    limit = setting(mount, state, "max_versions") or 0
    if not limit:  # unbounded history, the ledger's default: nothing to count
        return []
    alive = managed.unexpired_versions(tenant, key, state)
    if len(alive) <= limit:
        return []
    oldest = alive[:len(alive) - limit]
    tenant.record(ManagedVersionsDestroyed, ctx, at, key=key, versions=oldest)
    return oldest


def check_key(tenant: Tenant, mount: MountState, path: str, at: datetime
              ) -> tuple[str, ManagedState]:
    key = kv_key(mount, path)
    return key, managed.check_secret(tenant, key, at)


def _ledger_versions(tenant: Tenant, key: str, state: ManagedState,
                     versions: Sequence[int]) -> list[int]:
    """The ledger versions of those Vault versions that exist (others are ignored, as
    Vault ignores them)."""
    latest = current_version(tenant, key, state)
    return sorted({state["base"] + v for v in versions if 1 <= v <= latest})


def delete_versions(tenant: Tenant, mount: MountState, path: str, versions: Sequence[int],
                    ctx: RequestContext, at: datetime) -> None:
    key, state = check_key(tenant, mount, path, at)
    destroyed = tenant.secrets[key]["destroyed"] if key in tenant.secrets else []
    fresh = [v for v in _ledger_versions(tenant, key, state, versions)
             if v not in state["deleted"] and v not in destroyed]
    if fresh:
        tenant.record(ManagedVersionsDeleted, ctx, at, key=key, versions=fresh)


def delete_latest(tenant: Tenant, mount: MountState, path: str, ctx: RequestContext,
                  at: datetime) -> None:
    key, state = check_key(tenant, mount, path, at)
    latest = current_version(tenant, key, state)
    if latest:
        delete_versions(tenant, mount, path, [latest], ctx, at)


def undelete_versions(tenant: Tenant, mount: MountState, path: str, versions: Sequence[int],
                      ctx: RequestContext, at: datetime) -> None:
    key, state = check_key(tenant, mount, path, at)
    back = [v for v in _ledger_versions(tenant, key, state, versions) if v in state["deleted"]]
    if back:
        tenant.record(ManagedVersionsUndeleted, ctx, at, key=key, versions=back)


def destroy_versions(tenant: Tenant, mount: MountState, path: str, versions: Sequence[int],
                     ctx: RequestContext, at: datetime) -> tuple[str, list[int]]:
    """Destroys those versions; returns the key and the ledger versions destroyed now."""
    key, state = check_key(tenant, mount, path, at)
    destroyed = tenant.secrets[key]["destroyed"] if key in tenant.secrets else []
    fresh = [v for v in _ledger_versions(tenant, key, state, versions) if v not in destroyed]
    if fresh:
        tenant.record(ManagedVersionsDestroyed, ctx, at, key=key, versions=fresh)
    return key, fresh


def set_settings(tenant: Tenant, mount: MountState, path: str, settings: dict[str, Any],
                 ctx: RequestContext, at: datetime) -> None:
    """Vault's metadata write: a key with no version yet may be made this way."""
    tenant.check_not_shredded()
    key, state = _incarnation(tenant, mount, path, ctx, at)
    merged = {**state["settings"], **settings}
    if merged != state["settings"]:
        tenant.record(ManagedSettingsChanged, ctx, at, key=key, settings=merged)


def purge(tenant: Tenant, mount: MountState, path: str, ctx: RequestContext,
          at: datetime) -> tuple[str, list[int]]:
    """Vault's metadata delete: every version destroyed, the key's history ended; a
    missing key is no error (returns no versions)."""
    key = kv_key(mount, path)
    tenant.check_not_shredded()
    if managed.live_secret(tenant, key, at) is None:
        return key, []
    return key, managed.purge_now(tenant, key, ctx, at)


def check_path(path: str) -> str:
    if not path or path.startswith("/") or "//" in path or len(path) > 512 or any(
            segment in (".", "..") for segment in path.split("/")):
        raise SecretNotFound("no such secret")
    return path
