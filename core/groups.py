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

import inspect
import threading
from collections.abc import Callable, Mapping
from typing import Any

from secrets_ledger.core.directory import TenantDirectory, placement
from secrets_ledger.core.ledger import Ledger
from secrets_ledger.core.principals import BearerToken, Credential, Principal
from secrets_ledger.domain.errors import Unauthorized, Unavailable
from secrets_ledger.domain.tenant import tenant_id_for
from secrets_ledger.domain.times import format_time, utc_now

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
        self._tokens: dict[str, str] = {}  # token digest -> the group that holds it
        self._lock = threading.Lock()

    # ---- where a tenant lives ----------------------------------------------------------------

    async def group_of(self, tenant: str) -> str:
        known = self._tenants.get(tenant)
        if known is not None:
            return known
        listed = await self.home.door.in_thread(self.directory.group_of, tenant)
        if listed is None:  # not listed: the home group's, or no tenant at all
            return self.home_name
        return self._checked(self._remember(self._tenants, tenant, listed))

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
                await ledger.tenant_of(token)
            except Unauthorized:
                continue
            return self._remember(self._tokens, token.digest, name)
        return None

    async def credential_for(self, caller: Credential, group: str) -> Credential:
        """What goes to ``group`` for the caller: the token itself when that group holds
        it, else the principal it proves where it is held."""
        if isinstance(caller, Principal):
            return caller
        holder = await self.holder(caller)
        if holder is None or holder == group:
            return caller  # unknown everywhere: the group refuses it (401)
        return await self.ledgers[holder].authenticate(caller)

    async def principal(self, caller: Credential) -> Principal:
        """The principal a credential proves, wherever its token is held (else 401)."""
        credential = await self.credential_for(caller, "")
        return await self.home.authenticate(credential)

    # ---- one call ----------------------------------------------------------------------------

    async def on_tenant(self, use_cases: str, name: str, *args: Any, **kwargs: Any) -> Any:
        """Calls ``ledger.<use_cases>.<name>(caller, ..., tenant, ...)`` on the tenant's
        group (the home group's when the call names no tenant)."""
        method = getattr(getattr(self.home, use_cases), name)
        bound = inspect.signature(method).bind(*args, **kwargs)
        tenant = bound.arguments.get("tenant")
        group = self.home_name if tenant is None else await self.group_of(tenant)
        bound.arguments["caller"] = await self.credential_for(bound.arguments["caller"], group)
        target: Callable[..., Any] = getattr(getattr(self.ledgers[group], use_cases), name)
        return await target(*bound.args, **bound.kwargs)


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
