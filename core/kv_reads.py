"""Vault KV v2's queries: the mounts, a mount's configuration, a key's metadata and
versions (never values), the keys under a prefix, and value reads, each recorded before
the value is returned, exactly as a native read."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from secrets_ledger.core.door import Door
from secrets_ledger.core.managed_values import live_row
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.ports import ManagedRow, ManagedVersion, MountRow, ValueRow
from secrets_ledger.core.principals import Credential
from secrets_ledger.core.reads import Reads
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.domain import managed, mounts
from secrets_ledger.domain.errors import LedgerError, SecretNotFound
from secrets_ledger.domain.times import format_time, parse_time, utc_now


class _Unusual(LedgerError):
    """The fast read met something only the full path answers (nothing was recorded)."""

    code = "unavailable"


@dataclass(frozen=True)
class KvVersion:
    """A version as Vault describes it; ``data`` only for a value read (None when the
    version is deleted or destroyed: then there is no value, and nothing is recorded)."""

    version: int
    created_time: str
    deletion_time: str  # "" when live
    destroyed: bool
    data: Any = field(default=None, repr=False)


def deletion_time(row: ManagedRow, version: ManagedVersion, mount: MountRow) -> str:
    """When a version was (or will count as) deleted: soft-deleted, or past the key's
    or mount's ``delete_version_after`` (computed at read time: no event is written)."""
    if version.deleted_at is not None:
        return version.deleted_at
    after = (row.settings or {}).get("delete_version_after") or mount.config.get(
        "delete_version_after") or 0
    if after:
        due = parse_time(version.created_at) + timedelta(seconds=int(after))
        if due <= utc_now():
            return format_time(due)
    return ""


def describe(row: ManagedRow, version: ManagedVersion, mount: MountRow) -> KvVersion:
    return KvVersion(version.version - row.base, version.created_at,
                     deletion_time(row, version, mount), version.state == "destroyed")


class KvReads:
    def __init__(self, door: Door, reads: Reads) -> None:
        self.door = door
        self.reads = reads
        # (tenant, mount path) -> mount id, as last read from the views: only a hint for
        # the fast read, which finds a changed mount's rows gone and takes the full path.
        self._mount_ids: dict[tuple[str, str], str] = {}

    async def _latest(self, caller: Credential, tenant: str, mount: str, path: str,
                      request: RequestInfo) -> tuple[KvVersion, ManagedRow] | None:
        """The latest version's value in one recorded read (the common case, and as fast
        as a native read): the mount's id as last seen here, the key's and the mount's
        rows judged in the writer's statement. None (nothing recorded) when anything is
        unusual, for the full path to answer: a mount not seen yet or changed since, a
        version deleted, destroyed or past ``delete_version_after``."""
        mount_id = self._mount_ids.get((tenant, mount))
        if mount_id is None:
            return None
        seen: list[ValueRow] = []

        def judge(row: ValueRow) -> None:
            if (row.managed_suffix is None or row.managed_base is None or row.version is None
                    or row.current_version is None or row.managed_deleted_at is not None
                    or row.state != "active"):
                raise _Unusual("take the full path")
            settings = json.loads(row.managed_settings or "{}")
            config = json.loads(row.mount_config or "{}")
            after = settings.get("delete_version_after") or config.get("delete_version_after")
            if after and parse_time(str(row.created_at)) + timedelta(seconds=int(after)) <= (
                    utc_now()):
                raise _Unusual("take the full path")
            seen.append(row)

        key = managed.managed_key(mounts.space_of(mount_id), path)
        try:
            secret = await self.reads.recorded(caller, tenant, key, request, None, judge=judge)
        except _Unusual:
            return None
        row = seen[-1]
        base = int(row.managed_base or 0)
        facts = ManagedRow(key, path, "", "", "", None, None, None, {}, None, None, [], base,
                           json.loads(row.managed_settings or "{}"))
        return KvVersion(secret.version - base, secret.created_at, "", False,
                         secret.value), facts

    async def mounts(self, caller: Credential, tenant: str) -> list[MountRow]:
        return await self.door.in_thread(self._mounts, caller, tenant)

    def _mounts(self, caller: Credential, tenant: str) -> list[MountRow]:
        self.door.admit(caller, tenant, UseCase.LIST_KEYS)
        tenant_id, _ = self.door.tenant_row(tenant)
        return self.door.views.mounts(tenant_id)

    def _mount(self, tenant: str, tenant_id: str, path: str) -> MountRow:
        for mount in self.door.views.mounts(tenant_id):
            if mount.path == path:
                self._mount_ids[(tenant, path)] = mount.mount_id
                return mount
        self._mount_ids.pop((tenant, path), None)
        raise SecretNotFound("no handler for route", path=path)

    async def mount(self, caller: Credential, tenant: str, path: str) -> MountRow:
        return await self.door.in_thread(self._find_mount, caller, tenant, path)

    def _find_mount(self, caller: Credential, tenant: str, path: str) -> MountRow:
        self.door.admit(caller, tenant, UseCase.LIST_KEYS)
        tenant_id, _ = self.door.tenant_row(tenant)
        return self._mount(tenant, tenant_id, path)

    async def metadata(self, caller: Credential, tenant: str, mount: str, path: str
                       ) -> tuple[ManagedRow, MountRow]:
        return await self.door.in_thread(self._metadata, caller, tenant, mount, path,
                                          UseCase.LIST_VERSIONS)

    def _metadata(self, caller: Credential, tenant: str, mount: str, path: str,
                  use_case: UseCase) -> tuple[ManagedRow, MountRow]:
        self.door.admit(caller, tenant, use_case)
        tenant_id, _ = self.door.tenant_row(tenant)
        found = self._mount(tenant, tenant_id, mount)
        rows = self.door.views.managed_secrets(tenant_id, mounts.space_of(found.mount_id),
                                               [path])
        now = utc_now()
        live = [row for row in rows if live_row(row, now)]
        if not live:
            raise SecretNotFound("no such secret")
        return live[0], found

    async def keys(self, caller: Credential, tenant: str, mount: str, prefix: str
                   ) -> list[str]:
        """The names under ``prefix`` (a folder): keys, and ``sub/`` for deeper ones;
        soft-deleted keys included, as Vault lists them."""
        return await self.door.in_thread(self._keys, caller, tenant, mount, prefix)

    def _keys(self, caller: Credential, tenant: str, mount: str, prefix: str) -> list[str]:
        self.door.admit(caller, tenant, UseCase.LIST_KEYS)
        tenant_id, _ = self.door.tenant_row(tenant)
        found = self._mount(tenant, tenant_id, mount)
        folder = prefix if not prefix or prefix.endswith("/") else prefix + "/"
        names: set[str] = set()
        now = utc_now()
        for row in self.door.views.managed_secrets(tenant_id, mounts.space_of(found.mount_id)):
            if row.name.startswith(folder) and live_row(row, now):
                rest = row.name[len(folder):]
                names.add(rest.split("/", 1)[0] + "/" if "/" in rest else rest)
        return sorted(names)

    async def read(self, caller: Credential, tenant: str, mount: str, path: str,
                   version: int | None, request: RequestInfo) -> tuple[KvVersion, ManagedRow]:
        """A version's value (the latest unless ``version``), recorded before it is
        returned; a deleted or destroyed version comes back without data and unrecorded."""
        if version is None:
            latest = await self._latest(caller, tenant, mount, path, request)
            if latest is not None:
                return latest
        principal = await self.door.admitted(caller, tenant, UseCase.READ_VALUE)
        row, found = await self.door.in_thread(self._metadata, principal, tenant, mount, path,
                                               UseCase.READ_VALUE)
        wanted = row.base + version if version is not None else (
            row.versions[-1].version if row.versions else None)
        chosen = next((v for v in row.versions if v.version == wanted), None)
        if chosen is None:
            raise SecretNotFound("no such version")
        described = describe(row, chosen, found)
        if described.destroyed or described.deletion_time:
            return described, row
        secret = await self.reads.recorded(principal, tenant, row.key, request, wanted)
        return KvVersion(described.version, described.created_time, "", False,
                         secret.value), row
