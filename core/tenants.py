"""Tenants: opened, listed, their key rotated, shredded (admin use cases)."""

from __future__ import annotations

from dataclasses import dataclass

from secrets_ledger.core.door import Door
from secrets_ledger.core.jobs import Effects
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.principals import Credential
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.domain.errors import TenantExists
from secrets_ledger.domain.tenant import Tenant
from secrets_ledger.domain.times import format_time, utc_now


@dataclass(frozen=True)
class TenantInfo:
    tenant: str
    created_at: str
    shredded_at: str | None


class Tenants:
    def __init__(self, door: Door) -> None:
        self.door = door

    async def open(self, caller: Credential, tenant: str, request: RequestInfo) -> str:
        """Opens a tenant (and its first tenant key); returns when, as stored text."""
        envelope = self.door.envelope

        def run(aggregate: Tenant | None, effects: Effects, ctx: RequestContext
                ) -> tuple[Tenant, str]:
            if aggregate is not None:
                raise TenantExists("the tenant exists already")
            opened = Tenant.open(tenant, ctx, utc_now())
            effects.before_save.append(
                lambda: envelope.create_tenant_key(str(opened.id), opened.key_version))
            return opened, format_time(opened.created_on)

        return await self.door.command(caller, UseCase.OPEN_TENANT, tenant, request, run)

    async def list_all(self, caller: Credential) -> list[TenantInfo]:
        return await self.door.in_thread(self._list, caller)

    def _list(self, caller: Credential) -> list[TenantInfo]:
        self.door.admit(caller, None, UseCase.LIST_TENANTS)
        self.door.await_views()
        return [TenantInfo(*row) for row in self.door.views.tenants()]

    async def rotate_key(self, caller: Credential, tenant: str, request: RequestInfo) -> int:
        """New writes use a new tenant key from now on; returns its version."""
        envelope = self.door.envelope

        def run(aggregate: Tenant | None, effects: Effects, ctx: RequestContext
                ) -> tuple[Tenant, int]:
            rotated = self.door.existing(aggregate)
            version = rotated.rotate_key(ctx, utc_now())
            effects.before_save.append(
                lambda: envelope.create_tenant_key(str(rotated.id), version))
            return rotated, version

        return await self.door.command(caller, UseCase.ROTATE_TENANT_KEY, tenant, request, run,
                                       lambda outcome: int(outcome["version"]))

    async def shred(self, caller: Credential, tenant: str, request: RequestInfo) -> str:
        """Destroys every key of the tenant, then records that it was shredded; returns
        when. Its history stays, and verifies."""
        envelope = self.door.envelope

        def run(aggregate: Tenant | None, effects: Effects, ctx: RequestContext
                ) -> tuple[Tenant, str]:
            shredded = self.door.existing(aggregate)
            at = utc_now()
            shredded.shred(ctx, at)
            tenant_id = str(shredded.id)

            def destroy_keys() -> None:
                # Keys go first: once the event is acknowledged, nothing can open a value.
                envelope.forget_tenant(tenant_id)
                envelope.rows.shred_tenant(tenant_id)

            effects.before_save.append(destroy_keys)
            return shredded, format_time(at)

        when = await self.door.command(caller, UseCase.SHRED_TENANT, tenant, request, run)
        # Answer only once no copy of its keys is left in the database's files.
        await self.door.in_thread(envelope.rows.erase_deleted)
        return when
