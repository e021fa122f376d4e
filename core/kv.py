"""Vault KV v2's commands over the ledger (``domain.kv``, ``domain.mounts``): mounts
enabled, configured and disabled; versions written, soft-deleted, undeleted and
destroyed; a key's settings; a key's whole history ended. Each runs in the group-commit
writer; whatever destroys versions deletes their data keys before its save and answers
once they are erased from the database's files."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from secrets_ledger.core.door import Door
from secrets_ledger.core.envelope import ValueSealer
from secrets_ledger.core.jobs import Effects
from secrets_ledger.core.managed_purges import (
    KnownKeys,
    StaleKeys,
    destroy_before_save,
    with_known_keys,
)
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.principals import Credential
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.domain import kv, managed, mounts, rules
from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.domain.tenant import Tenant, tenant_id_for
from secrets_ledger.domain.times import format_time, utc_now


@dataclass(frozen=True)
class KvWritten:
    version: int  # Vault's
    created_time: str


class KvCommands:
    def __init__(self, door: Door) -> None:
        self.door = door

    async def _erased(self) -> None:
        await self.door.in_thread(self.door.envelope.rows.erase_deleted)

    # ---- mounts ---------------------------------------------------------------------

    async def enable_mount(self, caller: Credential, tenant: str, path: str, mount_type: str,
                           options: dict[str, Any], request: RequestInfo) -> None:
        def run(aggregate: Tenant, effects: Effects, ctx: RequestContext) -> None:
            mounts.enable(aggregate, path, mount_type, options, str(uuid.uuid4()), ctx,
                          utc_now())

        await self.door.on_tenant(caller, UseCase.WRITE_SECRETS, tenant, request, run)

    async def configure_mount(self, caller: Credential, tenant: str, path: str,
                              config: dict[str, Any], request: RequestInfo) -> None:
        def run(aggregate: Tenant, effects: Effects, ctx: RequestContext) -> None:
            mounts.configure(aggregate, path, config, ctx, utc_now())

        await self.door.on_tenant(caller, UseCase.WRITE_SECRETS, tenant, request, run)

    async def disable_mount(self, caller: Credential, tenant: str, path: str,
                            request: RequestInfo) -> None:
        """Disables the mount and crypto-shreds every version of its secrets."""
        keys = await self.door.in_thread(self._mount_keys, caller, tenant, path)

        async def attempt(known: KnownKeys) -> None:
            def run(aggregate: Tenant, effects: Effects, ctx: RequestContext) -> None:
                destroy_before_save(self.door, tenant, effects, known,
                                    mounts.disable(aggregate, path, ctx, utc_now()))

            await self.door.on_tenant(caller, UseCase.DESTROY_VERSIONS, tenant, request, run)

        await with_known_keys(self.door, caller, UseCase.DESTROY_VERSIONS, tenant, keys,
                              attempt)
        await self._erased()

    def _mount_keys(self, caller: Credential, tenant: str, path: str) -> list[str]:
        self.door.admit(caller, tenant, UseCase.DESTROY_VERSIONS)
        tenant_id, _ = self.door.tenant_row(tenant)
        found = [m for m in self.door.views.mounts(tenant_id) if m.path == path]
        if not found:
            return []
        space = mounts.space_of(found[0].mount_id)
        return [row.key for row in self.door.views.managed_secrets(tenant_id, space)]

    # ---- versions ---------------------------------------------------------------------

    async def write(self, caller: Credential, tenant: str, mount: str, path: str,
                    data: dict[str, Any], cas: int | None, request: RequestInfo
                    ) -> KvWritten:
        envelope, tenant_id = self.door.envelope, str(tenant_id_for(tenant))
        plaintext = rules.encode_value(data)

        async def attempt(known: KnownKeys) -> KvWritten:
            def run(aggregate: Tenant, effects: Effects, ctx: RequestContext) -> KvWritten:
                at = utc_now()
                state = mounts.check_mount(aggregate, mount)
                key = kv.kv_key(state, kv.check_path(path))
                sealer = ValueSealer(envelope, tenant_id, {key: plaintext})
                version, trimmed = kv.write(aggregate, state, path, cas, sealer, ctx, at)
                effects.data_keys += sealer.new_keys
                destroy_before_save(self.door, tenant, effects, known, {key: trimmed})
                return KvWritten(version, format_time(at))

            return await self.door.on_tenant(caller, UseCase.WRITE_SECRETS, tenant, request, run)

        try:  # nearly always nothing to destroy: no data keys to look up first
            return await attempt({})
        except StaleKeys:  # max_versions destroys some: look their data keys up, again
            keys = await self.door.in_thread(self._kv_keys, caller, tenant, mount, path,
                                             UseCase.WRITE_SECRETS)
            written = await with_known_keys(self.door, caller, UseCase.WRITE_SECRETS, tenant,
                                            keys, attempt)
            await self._erased()
            return written

    def _kv_keys(self, caller: Credential, tenant: str, mount: str, path: str,
                 use_case: UseCase) -> list[str]:
        """The key a mount's path names (none when there is no such mount), if the
        key's data keys may be needed (a limit of versions is set somewhere)."""
        self.door.admit(caller, tenant, use_case)
        tenant_id, _ = self.door.tenant_row(tenant)
        found = [m for m in self.door.views.mounts(tenant_id) if m.path == mount]
        return [] if not found else [
            managed.managed_key(mounts.space_of(found[0].mount_id), path)]

    async def delete_versions(self, caller: Credential, tenant: str, mount: str, path: str,
                              versions: Sequence[int] | None, request: RequestInfo) -> None:
        """Soft-deletes those versions (the latest when None); unknown ones are ignored."""
        def run(aggregate: Tenant, effects: Effects, ctx: RequestContext) -> None:
            state = mounts.check_mount(aggregate, mount)
            if versions is None:
                kv.delete_latest(aggregate, state, kv.check_path(path), ctx, utc_now())
            else:
                kv.delete_versions(aggregate, state, kv.check_path(path), versions, ctx,
                                   utc_now())

        await self.door.on_tenant(caller, UseCase.DELETE_SECRET, tenant, request, run)

    async def undelete_versions(self, caller: Credential, tenant: str, mount: str, path: str,
                                versions: Sequence[int], request: RequestInfo) -> None:
        def run(aggregate: Tenant, effects: Effects, ctx: RequestContext) -> None:
            kv.undelete_versions(aggregate, mounts.check_mount(aggregate, mount),
                                 kv.check_path(path), versions, ctx, utc_now())

        await self.door.on_tenant(caller, UseCase.UNDELETE_SECRET, tenant, request, run)

    async def destroy_versions(self, caller: Credential, tenant: str, mount: str, path: str,
                               versions: Sequence[int], request: RequestInfo) -> None:
        await self._destroy(caller, tenant, mount, path, request,
                            lambda aggregate, state, ctx, at: kv.destroy_versions(
                                aggregate, state, path, versions, ctx, at))

    async def delete_metadata(self, caller: Credential, tenant: str, mount: str, path: str,
                              request: RequestInfo) -> None:
        """Ends the key's history: every version destroyed; the next write is version 1."""
        await self._destroy(caller, tenant, mount, path, request, lambda aggregate, state,
                            ctx, at: kv.purge(aggregate, state, path, ctx, at))

    async def _destroy(self, caller: Credential, tenant: str, mount: str, path: str,
                       request: RequestInfo, destroy: Callable[..., tuple[str, list[int]]]
                       ) -> None:
        kv.check_path(path)
        keys = await self.door.in_thread(self._kv_keys, caller, tenant, mount, path,
                                         UseCase.DESTROY_VERSIONS)

        async def attempt(known: KnownKeys) -> None:
            def run(aggregate: Tenant, effects: Effects, ctx: RequestContext) -> None:
                state = mounts.check_mount(aggregate, mount)
                key, destroyed = destroy(aggregate, state, ctx, utc_now())
                destroy_before_save(self.door, tenant, effects, known, {key: destroyed})

            await self.door.on_tenant(caller, UseCase.DESTROY_VERSIONS, tenant, request, run)

        await with_known_keys(self.door, caller, UseCase.DESTROY_VERSIONS, tenant, keys,
                              attempt)
        await self._erased()

    async def set_metadata(self, caller: Credential, tenant: str, mount: str, path: str,
                           settings: dict[str, Any], request: RequestInfo) -> None:
        def run(aggregate: Tenant, effects: Effects, ctx: RequestContext) -> None:
            kv.set_settings(aggregate, mounts.check_mount(aggregate, mount),
                            kv.check_path(path), settings, ctx, utc_now())

        await self.door.on_tenant(caller, UseCase.WRITE_SECRETS, tenant, request, run)
