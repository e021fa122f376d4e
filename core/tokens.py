"""API tokens: random text shown once, stored only as a SHA-256 hash.

A token is ``slt_<token id>_<secret>``; the id part lets an operator name a token in
logs and revocations without ever seeing the secret part. A tenant's audit trail shows
each of its tokens being issued before it can be used, and being revoked.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from secrets_ledger.core.door import Door
from secrets_ledger.core.jobs import Effects
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.principals import Credential, Principal, Role, hash_token
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.domain.errors import InvalidRequest, TokenNotFound
from secrets_ledger.domain.rules import check_text
from secrets_ledger.domain.tenant import Tenant
from secrets_ledger.domain.times import format_time, utc_now

MAX_TTL_SECONDS = 10 * 365 * 24 * 3600


@dataclass(frozen=True)
class IssuedToken:
    token: str = field(repr=False)  # shown once, to the caller who asked for it
    token_id: str
    role: Role
    tenant: str | None
    expires_at: str | None


class Tokens:
    def __init__(self, door: Door) -> None:
        self.door = door
        self.rows = door.ports.token_rows

    async def issue(self, caller: Credential, role: Role, tenant: str | None,
                    ttl_seconds: int | None, description: str,
                    request: RequestInfo) -> IssuedToken:
        """A new token: an admin token (global; no tenant) or a token of one tenant."""
        principal = await self.door.admitted(caller, tenant, UseCase.ISSUE_TOKEN)
        if role == "admin" and tenant is not None:
            raise InvalidRequest("admin tokens are global: give no tenant")
        if role != "admin" and tenant is None:
            raise InvalidRequest("writer, reader and auditor tokens belong to one tenant")
        if ttl_seconds is not None and not 1 <= ttl_seconds <= MAX_TTL_SECONDS:
            raise InvalidRequest("ttl_seconds is 1 to 315,360,000")
        check_text(description, "the description")
        token_id = f"tok_{secrets.token_hex(8)}"
        token = f"slt_{token_id[4:]}_{secrets.token_urlsafe(32)}"
        expires_at = (format_time(utc_now() + timedelta(seconds=ttl_seconds))
                      if ttl_seconds is not None else None)
        if tenant is not None:
            # The audit trail shows the token before it can be used.
            def run(aggregate: Tenant | None, effects: Effects, ctx: RequestContext
                    ) -> tuple[Tenant, None]:
                issued = self.door.existing(aggregate)
                issued.issue_token(token_id, role, expires_at, ctx, utc_now())
                return issued, None

            await self.door.command(principal, UseCase.ISSUE_TOKEN, tenant, request, run)
        await self.door.in_thread(self._insert, token, token_id, role, tenant, description,
                                  expires_at)
        return IssuedToken(token, token_id, role, tenant, expires_at)

    def _insert(self, token: str, token_id: str, role: Role, tenant: str | None,
                description: str, expires_at: str | None) -> None:
        self.rows.insert((token_id, hash_token(token), role, tenant, expires_at, None),
                         description, format_time(utc_now()))

    async def revoke(self, caller: Credential, tenant: str, token_id: str,
                     request: RequestInfo) -> None:
        """The token stops working at once, in every process."""
        principal = await self.door.admitted(caller, tenant, UseCase.REVOKE_TOKEN)
        if not await self.door.in_thread(self.rows.revoke, tenant, token_id,
                                         format_time(utc_now())):
            raise TokenNotFound("no such live token for this tenant")

        def run(aggregate: Tenant | None, effects: Effects, ctx: RequestContext
                ) -> tuple[Tenant, None]:
            revoked = self.door.existing(aggregate)
            revoked.revoke_token(token_id, ctx, utc_now())
            return revoked, None

        await self.door.command(principal, UseCase.REVOKE_TOKEN, tenant, request, run)

    async def bootstrap(self, configured: str | None) -> str | None:
        """At ``serve``'s start: makes the configured token an admin token (idempotent; for
        containers and scripts), or on a store without an admin issues one and returns it
        (to be shown once)."""
        if configured is not None:
            if not await self.door.in_thread(self._known, configured):
                await self.door.in_thread(
                    self._insert, configured, f"tok_boot{secrets.token_hex(4)}", "admin",
                    None, "LEDGER_BOOTSTRAP_TOKEN", None)
            return None
        if await self.door.in_thread(self.rows.has_live_admin):
            return None
        issued = await self.issue(Principal.operator("serve"), "admin", None, None,
                                  "first start", RequestInfo("bootstrap"))
        return issued.token

    def _known(self, token: str) -> bool:
        digest = hash_token(token)
        return digest in self.rows.by_hashes([digest])
