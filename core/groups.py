"""Tenant groups: which group's ledger a call goes to, and as whom.

Each group is a complete ledger over storage of its own; a tenant, its tokens and its
AWS signing keys live in one group, admin tokens in the home group. A call on a tenant
goes to the tenant's group (the directory says which). The caller's credential goes with
it as it came when the group holds the token, so that the group authenticates it in the
same statement as the rest of its batch (the fast path); a token another group holds
(an admin's, or another tenant's) is authenticated there first and goes as the principal
it proves, which the tenant's group then admits or refuses like any other.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from secrets_ledger.core.directory import placement
from secrets_ledger.core.directory_ports import TenantDirectory
from secrets_ledger.core.ledger import Ledger
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.principals import BearerToken, Credential, Principal
from secrets_ledger.domain import rules
from secrets_ledger.domain.errors import TenantMoved, Unauthorized, Unavailable
from secrets_ledger.domain.tenant import tenant_id_for
from secrets_ledger.domain.times import format_time, utc_now

MOVE_POLL_SECONDS = 0.05
ROUTE_SECONDS = 1.0
"""How often a process looks whether a move began or ended: every process sees a move
within this long, and its calls on the tenant then wait for the move to end."""
KEPT = 100_000
"""Tenants and tokens whose group is remembered (each entry is a few dozen bytes)."""


class TenantGroups:
    def __init__(self, ledgers: Mapping[str, Ledger], home: str,
                 directory: TenantDirectory) -> None:
        self.home_name = home
        self.ledgers = {home: ledgers[home], **ledgers}  # the home group first
        self.home = ledgers[home]
        self.directory = directory
        self._tenants: dict[str, str] = {}  # tenant -> its group, once listed
        self._moves, self._looked = -1, 0.0  # the directory's moves, when last looked at
        self._tokens: dict[str, str] = {}  # token digest -> the group that holds it
        self._lock = threading.Lock()
        self._signatures: dict[tuple[str, str], inspect.Signature] = {}

    # ---- where a tenant lives ----------------------------------------------------------------

    async def group_of(self, tenant: str) -> str:
        """The tenant's group; while a move of the tenant is under way, once it ends
        (TenantMoved, 503, if it takes longer than the store retry timeout)."""
        await self._moves_seen()
        known = self._tenants.get(tenant)
        if known is not None:
            return known
        deadline = time.monotonic() + self.home.door.settings.store_retry_timeout
        while True:
            listed = await self.home.door.in_thread(self.directory.listing, tenant)
            if listed is None:  # not listed: the home group's, or no tenant at all
                return self.home_name
            if listed.moving_to is None:
                return self._checked(self._remember(self._tenants, tenant, listed.group))
            if time.monotonic() > deadline:
                raise TenantMoved("the tenant is moving to another tenant group; retry")
            await asyncio.sleep(MOVE_POLL_SECONDS)

    async def _moves_seen(self) -> None:
        """Forgets where every tenant is when a move began or ended since the last look
        (one statement every ``ROUTE_SECONDS``)."""
        now = time.monotonic()
        if now - self._looked < ROUTE_SECONDS:
            return
        self._looked = now
        moves = await self.home.door.in_thread(self.directory.moves)
        if moves != self._moves:
            self._moves = moves
            self._tenants.clear()

    async def place(self, tenant: str) -> str:
        """The tenant's group: as listed, else the home group's if its stream is there
        (opened before groups, not listed yet), else placed now (``placement``)."""
        def placed() -> str:
            listed = self.directory.group_of(tenant)
            if listed is not None:
                return listed
            chosen = (self.home_name if self.home.door.streams.head(tenant_id_for(tenant))
                      is not None else placement(tenant, sorted(self.ledgers)))
            return self.directory.place(tenant, chosen, format_time(utc_now()))

        recorded = await self.home.door.in_thread(placed)
        return self._checked(self._remember(self._tenants, tenant, recorded))

    def forget(self, tenant: str) -> None:
        """The tenant moved: its group is asked of the directory again."""
        self._tenants.pop(tenant, None)

    def _checked(self, group: str) -> str:
        if group not in self.ledgers:
            raise Unavailable(f"this tenant's group ({group}) is not configured on this"
                              " server")
        return group

    def _remember(self, kept: dict[str, str], key: str, group: str) -> str:
        with self._lock:
            if len(kept) >= KEPT:
                kept.pop(next(iter(kept)))
            kept[key] = group
        return group

    # ---- as whom -----------------------------------------------------------------------------

    async def holder(self, token: BearerToken) -> str | None:
        """The group that holds a live token (the home group first), None if none does."""
        known = self._tokens.get(token.digest)
        if known is not None:
            return known
        for name, ledger in self.ledgers.items():
            try:
                await ledger.authenticate(token)  # its row, asked now (tokens move)
            except Unauthorized:
                continue
            return self._remember(self._tokens, token.digest, name)
        return None

    async def credential_for(self, caller: Credential, group: str) -> Credential:
        """What goes to ``group`` for the caller: the token itself when that group holds
        it, else the principal it proves where it is held."""
        if isinstance(caller, Principal):
            return caller
        for looked_again in (False, True):
            holder = await self.holder(caller)
            if holder is None or holder == group:
                return caller  # unknown everywhere: the group refuses it (401)
            try:
                return await self.ledgers[holder].authenticate(caller)
            except Unauthorized:  # moved away with its tenant since it was remembered?
                if looked_again:
                    raise
                self._tokens.pop(caller.digest, None)
        raise AssertionError("unreachable")

    async def placed(self, caller: Credential, tenant: str, use_case: UseCase
                     ) -> tuple[Principal, str]:
        """For a use case that may open the tenant: the caller's principal, once admitted,
        and the tenant's group, placed now if it has none (nothing is placed for a
        caller refused)."""
        principal = await self.principal(caller)
        await self.home.door.admitted(principal, tenant, use_case)
        rules.check_tenant_name(tenant)
        return principal, await self.place(tenant)

    async def principal(self, caller: Credential) -> Principal:
        """The principal a credential proves, wherever its token is held (else 401)."""
        credential = await self.credential_for(caller, "")
        return await self.home.authenticate(credential)

    # ---- one call ----------------------------------------------------------------------------

    async def on_tenant(self, use_cases: str, name: str, *args: Any, **kwargs: Any) -> Any:
        """Calls ``ledger.<use_cases>.<name>(caller, ..., tenant, ...)`` on the tenant's
        group (the home group's when the call names no tenant). A tenant being moved is
        asked for again until its move ends: the call then goes to its new group (it did
        nothing where it was refused), or fails 503 after the store retry timeout."""
        signature = self._signatures.get((use_cases, name))
        if signature is None:  # once per use case: inspect is slow
            signature = inspect.signature(getattr(getattr(self.home, use_cases), name))
            self._signatures[(use_cases, name)] = signature
        bound = signature.bind(*args, **kwargs)
        tenant, caller = bound.arguments.get("tenant"), bound.arguments["caller"]
        deadline = time.monotonic() + self.home.door.settings.store_retry_timeout
        asked_again = False
        while True:
            group = self.home_name if tenant is None else await self.group_of(tenant)
            bound.arguments["caller"] = await self.credential_for(caller, group)
            target: Callable[..., Any] = getattr(getattr(self.ledgers[group], use_cases), name)
            try:
                return await target(*bound.args, **bound.kwargs)
            except Unauthorized:  # a token that moved (with its tenant) since remembered?
                if asked_again or not isinstance(caller, BearerToken):
                    raise
                asked_again = True
                self._tokens.pop(caller.digest, None)
                if tenant is not None:
                    self.forget(tenant)
            except TenantMoved:
                if tenant is None or time.monotonic() > deadline:
                    raise
                self.forget(tenant)
                if await self.group_of(tenant) == group:  # the move is under way
                    await asyncio.sleep(MOVE_POLL_SECONDS)


class ByTenant:
    """A group of use cases (``ledger.secrets``, ``ledger.reads``...) whose every call goes
    to the tenant's group; a subclass adds the calls that span groups."""

    def __init__(self, groups: TenantGroups, use_cases: str) -> None:
        self.groups = groups
        self.use_cases = use_cases

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("_"):
            raise AttributeError(name)

        async def routed(*args: Any, **kwargs: Any) -> Any:
            return await self.groups.on_tenant(self.use_cases, name, *args, **kwargs)

        return routed
