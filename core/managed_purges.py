"""Purging managed secrets: a forced delete, a create over an incarnation whose recovery
window ran out, and the running server's sweep of such windows (until it runs, reads
treat them as gone: ``managed_values.live_row``, ``domain.managed.live_secret``).

A purge destroys the data keys of the incarnation's versions before its event is saved.
Their ids are read from the views first (the aggregate keeps no list of them, so that
its memory stays bounded); a version written in between makes the purge look again."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from secrets_ledger.core.door import Door
from secrets_ledger.core.jobs import Effects
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.principals import Credential, Principal
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.domain import managed
from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.domain.errors import LedgerError, Unavailable
from secrets_ledger.domain.tenant import Tenant, tenant_id_for
from secrets_ledger.domain.times import format_time, utc_now

SWEEPER = Principal.operator("serve")
SWEEP_SECONDS = 60.0
T = TypeVar("T")


class StaleKeys(LedgerError):
    """A version to purge was written after its data keys were looked up: look again."""

    code = "unavailable"


MAX_PURGE_ATTEMPTS = 3
KnownKeys = dict[str, dict[int, str | None]]  # key -> version -> data key id (None: gone)


def purged_data_keys(known: KnownKeys, key: str, versions: Sequence[int]) -> list[str]:
    """The data keys of the versions a purge destroys (destroyed before its save)."""
    of_key = known.get(key, {})
    if any(version not in of_key for version in versions):
        raise StaleKeys("the secret changed while it was purged; retry")
    return [dek for version in versions if (dek := of_key[version]) is not None]


def destroy_before_save(door: Door, tenant: str, effects: Effects, known: KnownKeys,
                        purged: dict[str, list[int]]) -> None:
    """The purged versions' data keys are deleted just before the event is saved."""
    rows, tenant_id = door.envelope.rows, str(tenant_id_for(tenant))
    dek_ids = [dek for key, versions in purged.items()
               for dek in purged_data_keys(known, key, versions)]
    if dek_ids:
        effects.before_save.append(lambda: rows.destroy_data_keys(tenant_id, dek_ids))


async def with_known_keys(door: Door, caller: Credential, use_case: UseCase, tenant: str,
                          keys: Sequence[str], attempt: Callable[[KnownKeys], Awaitable[T]]
                          ) -> T:
    """Runs a command that may purge ``keys``, given their data key ids as the views hold
    them once caught up; again if a version was written in between."""
    await door.admitted(caller, tenant, use_case)  # the right first, then the tenant's rows

    def known() -> KnownKeys:
        tenant_id, _ = door.tenant_row(tenant)
        return {key: door.views.data_key_ids(tenant_id, key) for key in keys}

    for _ in range(MAX_PURGE_ATTEMPTS):
        try:
            return await attempt(await door.in_thread(known))
        except StaleKeys:
            continue
    raise Unavailable("the secret kept changing while it was purged; retry")


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

        async def attempt(known: KnownKeys) -> int:
            def run(aggregate: Tenant | None, effects: Effects, ctx: RequestContext
                    ) -> tuple[Tenant, int]:
                found = self.door.existing(aggregate)
                state = found.managed.get(key)
                at = utc_now()
                # Still scheduled and past its window (it may have been restored, or purged
                # by another process, since the view was read).
                if found.shredded or state is None or managed.live_secret(found, key, at):
                    return found, 0
                dek_ids = purged_data_keys(known, key, managed.purge(found, key, state, ctx,
                                                                      at))
                if dek_ids:
                    effects.before_save.append(
                        lambda: rows.destroy_data_keys(tenant_id, dek_ids))
                return found, 1

            return await self.door.command(SWEEPER, UseCase.DESTROY_VERSIONS, tenant,
                                           RequestInfo(f"purge-{uuid.uuid4()}"), run)

        return await with_known_keys(self.door, SWEEPER, UseCase.DESTROY_VERSIONS, tenant,
                                     [key], attempt)
