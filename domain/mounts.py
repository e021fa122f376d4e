"""A tenant's mounts (Vault's ``sys/mounts``), and what unmounting means in a ledger that
never forgets: each enable gets a new mount id, whose space ``kv:<mount_id>`` holds its
secrets; disabling ends every secret of that space in the same event (their versions
destroyed: crypto-shredding, the events stay and verify), so a mount enabled again under
the same path starts empty."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.domain.errors import InvalidRequest, SecretNotFound
from secrets_ledger.domain.managed import unexpired_versions
from secrets_ledger.domain.managed_state import MountState
from secrets_ledger.domain.tenant import Tenant

MOUNT_TYPES = frozenset({"kv"})
DEFAULT_CONFIG: dict[str, Any] = {"max_versions": 0, "cas_required": False,
                                  "delete_version_after": 0}


def space_of(mount_id: str) -> str:
    return f"kv:{mount_id}"


class MountEnabled(Tenant.Event):
    path: str
    mount_id: str
    type: str
    options: dict[str, Any]

    def apply_to(self, tenant: Tenant) -> None:
        tenant.mounts[self.path] = {"mount_id": self.mount_id, "type": self.type,
                                    "options": dict(self.options),
                                    "config": dict(DEFAULT_CONFIG)}


class MountConfigured(Tenant.Event):
    path: str
    config: dict[str, Any]

    def apply_to(self, tenant: Tenant) -> None:
        tenant.mounts[self.path]["config"] = dict(self.config)


class MountDisabled(Tenant.Event):
    """The mount is gone, and with it every secret of its space: ``purged`` holds, by
    key, the versions destroyed with the save."""

    path: str
    mount_id: str
    purged: dict[str, list[int]]

    def apply_to(self, tenant: Tenant) -> None:
        del tenant.mounts[self.path]
        space = space_of(self.mount_id)
        for key in [k for k, state in tenant.managed.items() if state["space"] == space]:
            del tenant.managed[key]


def check_mount(tenant: Tenant, path: str) -> MountState:
    tenant.check_not_shredded()
    mount = tenant.mounts.get(path)
    if mount is None:
        raise SecretNotFound("no handler for route", path=path)
    return mount


def enable(tenant: Tenant, path: str, mount_type: str, options: dict[str, Any],
           mount_id: str, ctx: RequestContext, at: datetime) -> None:
    tenant.check_not_shredded()
    if mount_type not in MOUNT_TYPES:
        raise InvalidRequest(f"plugin not found in the catalog: {mount_type}")
    if path in tenant.mounts:
        raise InvalidRequest(f"path is already in use at {path}/")
    tenant.record(MountEnabled, ctx, at, path=path, mount_id=mount_id, type=mount_type,
                  options=options)


def configure(tenant: Tenant, path: str, config: dict[str, Any], ctx: RequestContext,
              at: datetime) -> None:
    mount = check_mount(tenant, path)
    merged = {**mount["config"], **config}
    if merged != mount["config"]:
        tenant.record(MountConfigured, ctx, at, path=path, config=merged)


def disable(tenant: Tenant, path: str, ctx: RequestContext, at: datetime
            ) -> dict[str, list[int]]:
    """Disables the mount (nothing to do if there is none); returns, by key, the versions
    destroyed (their data keys must go with the save)."""
    tenant.check_not_shredded()
    mount = tenant.mounts.get(path)
    if mount is None:
        return {}
    space = space_of(mount["mount_id"])
    purged = {key: unexpired_versions(tenant, key, state)
              for key, state in tenant.managed.items() if state["space"] == space}
    tenant.record(MountDisabled, ctx, at, path=path, mount_id=mount["mount_id"], purged=purged)
    return purged
