"""Recovery windows that ran out: the running server purges those secrets, as a forced
delete would (their versions destroyed, the events kept). Until it does, reads already
treat them as gone (``managed_values.live_row``, ``domain.managed.live_secret``)."""

from __future__ import annotations

import uuid

from secrets_ledger.core.door import Door
from secrets_ledger.core.jobs import Effects
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.principals import Principal
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.domain import managed
from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.domain.tenant import Tenant, tenant_id_for
from secrets_ledger.domain.times import format_time, utc_now

SWEEPER = Principal.operator("serve")
SWEEP_SECONDS = 60.0


class ManagedPurges:
    def __init__(self, door: Door) -> None:
        self.door = door

    async def sweep(self) -> int:
        """Purges every secret whose recovery window has passed; returns how many."""
        expired = await self.door.in_thread(self.door.views.expired_managed,
                                            format_time(utc_now()))
        purged = 0
        for tenant, key in expired:
            purged += await self._purge(tenant, key)
        if purged:
            await self.door.in_thread(self.door.envelope.rows.erase_deleted)
        return purged

    async def _purge(self, tenant: str, key: str) -> int:
        rows, tenant_id = self.door.envelope.rows, str(tenant_id_for(tenant))

        def run(aggregate: Tenant | None, effects: Effects, ctx: RequestContext
                ) -> tuple[Tenant, int]:
            found = self.door.existing(aggregate)
            state = found.managed.get(key)
            at = utc_now()
            # Still scheduled and past its window (it may have been restored, or purged by
            # another process, since the view was read).
            if found.shredded or state is None or managed.live_secret(found, key, at):
                return found, 0
            dek_ids = managed.purge(found, key, state, ctx, at)
            if dek_ids:
                effects.before_save.append(lambda: rows.destroy_data_keys(tenant_id, dek_ids))
            return found, 1

        return await self.door.command(SWEEPER, UseCase.DESTROY_VERSIONS, tenant,
                                       RequestInfo(f"purge-{uuid.uuid4()}"), run)
