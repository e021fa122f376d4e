"""Moving a tenant to another tenant group, under load, losing nothing and splitting nothing.

0. The directory marks the tenant as moving: within ``groups.ROUTE_SECONDS`` every
   process's calls on it wait for the move to end (up to the store retry timeout, then
   503) instead of going to its group.
1. The fence: ``MovedOut`` closes the tenant's stream in its group. The writer there
   refuses every command after it, and once the views hold it every query and read there
   answers ``TenantMoved``: the router then waits for the move to end (503 after the
   store retry timeout) and asks the new group. A command refused changed nothing.
2. The copy: every record the tenant's log covers, in the log's order (its events, the
   fence included, and its part of each read record), with its keys and tokens, stored in
   the target group in one transaction: the target's log holds the same leaves, so that
   every checkpoint and proof served before the move holds after it.
3. ``MovedIn`` lifts the fence in the target: its history goes on there, at the next
   stream version. The check: the chain and the log verify there, and the log begins
   with the source's leaves.
4. The switch: the directory lists the tenant in the target, if it is still listed in
   the source (compare and set).
5. The source forgets it: its keys and tokens deleted and erased; its records stay there,
   sealed for good, closed by the fence.

A move interrupted anywhere is taken up again by running it again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass
from uuid import UUID

from secrets_ledger.core.door import Door
from secrets_ledger.core.groups import ROUTE_SECONDS, TenantGroups
from secrets_ledger.core.move_ports import TenantCopy
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.principals import Credential, Principal
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.domain import rules
from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.domain.errors import Contended, InvalidRequest, TenantMoved, Unavailable
from secrets_ledger.domain.tenant import Tenant, tenant_id_for
from secrets_ledger.domain.times import format_time, utc_now


@dataclass(frozen=True)
class MoveReport:
    source: str
    target: str
    records: int  # copied: its events and read records (its log's leaves)
    events: int  # of its stream in the target, each verified
    unavailable_seconds: float  # from the fence to the switch: commands wait meanwhile


class TenantMove:
    def __init__(self, groups: TenantGroups, copies: Mapping[str, TenantCopy]) -> None:
        self.groups = groups
        self.copies = copies

    async def move(self, caller: Credential, tenant: str, target: str,
                   request: RequestInfo) -> MoveReport:
        """Moves the tenant to the group ``target`` (admins: it shreds the tenant where it
        was, keys and tokens)."""
        groups, home = self.groups, self.groups.home
        principal = await groups.principal(caller)
        await home.door.admitted(principal, tenant, UseCase.SHRED_TENANT)
        rules.check_tenant_name(tenant)
        if target not in groups.ledgers:
            raise InvalidRequest(f"no tenant group is named {target!r}")
        listed = await home.door.in_thread(groups.directory.group_of, tenant)
        source_name = listed or groups.home_name
        if source_name == target:
            left = await home.door.in_thread(self._erase_left_behind, tenant, target)
            raise InvalidRequest(f"{tenant} is in {target} already" + (
                f" (its keys and tokens left in {', '.join(left)} by a move that stopped"
                " are erased now)" if left else ""))
        source, tenant_id = groups.ledgers[source_name], tenant_id_for(tenant)
        started = time.monotonic()
        if not await home.door.in_thread(groups.directory.begin_move, tenant, source_name,
                                         target, format_time(utc_now())):
            raise InvalidRequest(f"{tenant} is being moved elsewhere")
        # Every process sees the move within this long: its calls on the tenant then wait
        # for the move to end, and the fence below has (nearly) no writer to contend with.
        await asyncio.sleep(ROUTE_SECONDS * 1.5)
        await self._fence(source_name, tenant, target, request, principal)
        await source.door.in_thread(source.door.await_views)  # now every read says moved
        copied, fence = await home.door.in_thread(self._copy, source_name, target,
                                                  tenant_id, tenant)
        there_now = groups.ledgers[target]
        await there_now.door.command(  # its history goes on there: the fence lifted
            principal, UseCase.SHRED_TENANT, tenant, request,
            lambda found, _, ctx: (self._moved_in(found, source_name, fence, ctx), None),
            moving=True)
        check = await there_now.history.verify(principal, tenant)
        if not check.ok:
            raise Unavailable(f"the copy in {target} does not verify ({check.reason});"
                              f" {tenant} stays in {source_name}, fenced: run the move again")
        if not await home.door.in_thread(groups.directory.move, tenant, source_name, target,
                                         format_time(utc_now())):
            raise Unavailable(f"{tenant} is no longer listed in {source_name}")
        groups.forget(tenant)
        unavailable = time.monotonic() - started
        there = self.copies[source_name]
        # A token revoked there since it was copied (its revocation's event was refused
        # by the fence, and retried here by the router, unless its caller gave up).
        await source.door.in_thread(lambda: self.copies[target].revoke_as(
            there.rows(tenant, tenant_id).tokens))
        await source.door.in_thread(there.erase, tenant, tenant_id)
        return MoveReport(source_name, target, copied, check.events, unavailable)

    def _erase_left_behind(self, tenant: str, target: str) -> list[str]:
        """Erases the tenant's keys and tokens in the groups it moved from to ``target``
        (a move that stopped after its switch); the groups where it found some."""
        tenant_id, left = tenant_id_for(tenant), []
        for name, ledger in self.groups.ledgers.items():
            found = ledger.door.streams.load(tenant_id) if name != target else None
            if found is None or found.moved_to != target:
                continue
            rows = self.copies[name].rows(tenant, tenant_id)
            if rows.tenant_keys or rows.tokens:
                self.copies[name].erase(tenant, tenant_id)
                left.append(name)
        return left

    async def _fence(self, source: str, tenant: str, target: str, request: RequestInfo,
                     principal: Principal) -> None:
        """Appends ``MovedOut`` where the tenant is, retried while calls that began
        before the move was seen still append (for up to the store retry timeout)."""
        door = self.groups.ledgers[source].door
        deadline = time.monotonic() + door.settings.store_retry_timeout
        while True:
            try:
                await door.on_tenant(principal, UseCase.SHRED_TENANT, tenant, request,
                                     lambda found, _, ctx: found.move_out(target, ctx,
                                                                          utc_now()))
                return
            except TenantMoved:  # fenced by a move that did not finish: take it up
                await self._check_fenced_for(source, tenant_id_for(tenant), target)
                return
            except Contended:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.05)

    async def _check_fenced_for(self, source: str, tenant_id: UUID, target: str) -> None:
        door = self.groups.ledgers[source].door
        found = await door.in_thread(door.streams.load, tenant_id)
        if found is None or found.moved_to != target:
            raise InvalidRequest(f"the tenant is moving to {found and found.moved_to}")

    @staticmethod
    def _moved_in(found: Tenant | None, source: str, fence: int, ctx: RequestContext
                  ) -> Tenant:
        tenant = Door.existing(found)
        if tenant.version == fence:  # else lifted already, by a move run before
            tenant.move_in(source, ctx, utc_now())
        return tenant

    def _copy(self, source: str, target: str, tenant_id: UUID, tenant: str
              ) -> tuple[int, int]:
        """Copies the tenant's records, the fence included, unless the target holds them
        already (a move run again); checks that the target's log has the source's leaves.
        Returns how many, and the fence's stream version."""
        there, here = self.copies[source], self.copies[target]
        leaves = there.leaves(tenant_id)
        records = there.records(tenant_id, leaves)
        fences = [record for record in records if isinstance(record, Tenant.MovedOut)]
        if not fences or fences[-1].group != target:
            raise Unavailable("the tenant's stream is not fenced for this move")
        if not here.leaves(tenant_id):
            # First: the feed of every tenant never serves these changes twice.
            self.groups.directory.record_copy(tenant, target, fences[-1].originator_version)
            here.store(records, there.rows(tenant, tenant_id))
        if [leaf.leaf for leaf in here.leaves(tenant_id)][:len(leaves)] != [
                leaf.leaf for leaf in leaves]:
            raise Unavailable(f"the log copied to {target} is not the source's: nothing"
                              " switched; the tenant stays fenced where it was")
        return len(records), fences[-1].originator_version
