"""API tokens: random text shown once, stored only as a SHA-256 hash.

A token is ``slt_<token id>_<secret>``; the id part lets an operator name a token in
logs and revocations without ever seeing the secret part. A tenant's audit trail shows
each of its tokens being issued before it can be used, and being revoked. Admin tokens
belong to no tenant: their row names who issued and who revoked each (the listing shows
it). The token given by ``LEDGER_BOOTSTRAP_TOKEN`` replaces the one given before.
"""

from __future__ import annotations

import math
import re
import secrets
import zlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta

from secrets_ledger.core.door import Door
from secrets_ledger.core.jobs import Effects
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.ports import TokenRow
from secrets_ledger.core.principals import (
    BOOTSTRAP_ID_PREFIX,
    MAX_TOKEN_CHARS,
    Credential,
    Principal,
    Role,
    TokenRecord,
    hash_token,
)
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.core.signing_keys import aws_key_pair, store_signing_key
from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.domain.errors import InvalidRequest, TokenNotFound
from secrets_ledger.domain.rules import check_tenant_name, check_text
from secrets_ledger.domain.tenant import Tenant
from secrets_ledger.domain.times import format_time, utc_now

MAX_TTL_SECONDS = 10 * 365 * 24 * 3600
BOOTSTRAP_MIN_CHARS = 32
BOOTSTRAP_MIN_BITS = 128
BOOTSTRAP_DESCRIPTION = "LEDGER_BOOTSTRAP_TOKEN"
TOKEN_ID = re.compile(r"tok_[a-z0-9]{1,60}")
SERVE = Principal.operator("serve")


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
        await self.door.in_thread(self.rows.insert,
                                  (token_id, hash_token(token), role, tenant, expires_at, None),
                                  description, format_time(utc_now()), principal.token_id)
        if tenant is not None:  # its AWS key pair (the façade is tenant-scoped)
            await self.door.in_thread(store_signing_key, self.door, token_id,
                                      aws_key_pair(token)[1])
        return IssuedToken(token, token_id, role, tenant, expires_at)

    async def revoke(self, caller: Credential, tenant: str, token: str,
                     request: RequestInfo) -> str:
        """Revokes a token of the tenant, named by its id or by the token itself; returns
        its id. It stops working at once, in every process."""
        principal = await self.door.admitted(caller, tenant, UseCase.REVOKE_TOKEN)
        row = await self.door.in_thread(self._row_of, token)
        if row is None or row[3] != tenant:
            raise TokenNotFound("no such live token for this tenant")
        return await self._revoke(principal, UseCase.REVOKE_TOKEN, row, request)

    async def revoke_any(self, caller: Credential, token: str, request: RequestInfo) -> str:
        """Revokes any token, admin tokens included, named by its id or by the token
        itself; returns its id."""
        principal = await self.door.admitted(caller, None, UseCase.REVOKE_ANY_TOKEN)
        row = await self.door.in_thread(self._row_of, token)
        if row is None:
            raise TokenNotFound("no such live token")
        return await self._revoke(principal, UseCase.REVOKE_ANY_TOKEN, row, request)

    async def _revoke(self, principal: Principal, use_case: UseCase, row: TokenRow,
                      request: RequestInfo) -> str:
        token_id, tenant = row[0], row[3]
        # The row first: the token stops working even if the record below fails.
        if not await self.door.in_thread(self.rows.revoke, [token_id], format_time(utc_now()),
                                         principal.token_id):
            raise TokenNotFound("no such live token")
        if tenant is not None:
            def run(aggregate: Tenant | None, effects: Effects, ctx: RequestContext
                    ) -> tuple[Tenant, None]:
                revoked = self.door.existing(aggregate)
                revoked.revoke_token(token_id, ctx, utc_now())
                return revoked, None

            await self.door.command(principal, use_case, tenant, request, run)
        return token_id

    def _row_of(self, token: str) -> TokenRow | None:
        """The row of a token named by its id (``tok_...``) or by the token itself (which,
        configured as a bootstrap token, may look like an id)."""
        row = self.rows.by_id(token) if TOKEN_ID.fullmatch(token) else None
        if row is not None or not token or len(token) > MAX_TOKEN_CHARS:
            return row
        digest = hash_token(token)
        return self.rows.by_hashes([digest]).get(digest)

    async def list_tenant(self, caller: Credential, tenant: str) -> list[TokenRecord]:
        """The tenant's tokens, revoked and expired ones included; never a secret."""
        return await self.door.in_thread(self._list_tenant, caller, tenant)

    def _list_tenant(self, caller: Credential, tenant: str) -> list[TokenRecord]:
        self.door.admit(caller, tenant, UseCase.LIST_TOKENS)
        self.door.tenant_row(tenant)  # an unknown tenant is told so
        return self.rows.listing(tenant)

    async def list_all(self, caller: Credential, tenant: str | None = None
                       ) -> list[TokenRecord]:
        """Every token, admin tokens included (or those of one tenant); never a secret."""
        return await self.door.in_thread(self._list_all, caller, tenant)

    def _list_all(self, caller: Credential, tenant: str | None) -> list[TokenRecord]:
        self.door.admit(caller, None, UseCase.LIST_ALL_TOKENS)
        if tenant is not None:
            check_tenant_name(tenant)
        return self.rows.listing(tenant)


    async def bootstrap(self, configured: str | None) -> str | None:
        """At ``serve``'s start: makes the configured token an admin token (idempotent; for
        containers and scripts) in place of the one configured before, or on a store
        without an admin issues one and returns it (to be shown once)."""
        if configured is not None:
            await self.door.in_thread(self._configure, configured.strip())
            return None
        if await self.door.in_thread(self.rows.has_live_admin):
            return None
        issued = await self.issue(SERVE, "admin", None, None, "first start",
                                  RequestInfo("bootstrap"))
        return issued.token

    def _configure(self, token: str) -> None:
        """Makes ``token`` an admin token (kept as it is when known) and revokes every
        other bootstrap token: the one configured before stops working."""
        check_bootstrap_token(token)
        digest = hash_token(token)
        now = format_time(utc_now())
        self.rows.insert((f"{BOOTSTRAP_ID_PREFIX}{secrets.token_hex(8)}", digest, "admin",
                          None, None, None), BOOTSTRAP_DESCRIPTION, now, SERVE.token_id)
        token_id, _, role, tenant, expires_at, revoked_at = self.rows.by_hashes([digest])[digest]
        if role != "admin" or tenant is not None:
            raise InvalidRequest(f"{BOOTSTRAP_DESCRIPTION} is a tenant's token, not an admin"
                                 " token: configure a new one")
        if revoked_at is not None or (expires_at is not None and expires_at <= now):
            raise InvalidRequest(f"{BOOTSTRAP_DESCRIPTION} was revoked or has expired:"
                                 " configure a new one")
        # Only those made before it: two processes started with two new tokens at once
        # leave the later one live, not neither.
        live = self.rows.live_bootstrap_ids()
        self.rows.revoke(live[:live.index(token_id)] if token_id in live else live, now,
                         SERVE.token_id)


def check_token_id(text: str) -> str:
    """For front ends that take only ids (a URL path ends up in logs: never a token)."""
    if not TOKEN_ID.fullmatch(text):
        raise TokenNotFound("name the token by its id (tok_...), never by the token")
    return text


def estimated_bits(token: str) -> float:
    """The smaller of two estimates of a token's randomness: its length times the Shannon
    entropy of its characters' frequencies (low for few or repeated characters), and
    the bits zlib needs for it (low for repeated runs: ``abcd`` * 16)."""
    counts = Counter(token)
    by_frequency = -sum(n * math.log2(n / len(token)) for n in counts.values())
    data = token.encode("utf-8", "surrogatepass")
    by_compression = 8 * (len(zlib.compress(data, 9)) - len(zlib.compress(b"", 9)))
    return min(by_frequency, by_compression)


def check_bootstrap_token(token: str) -> None:
    if not (BOOTSTRAP_MIN_CHARS <= len(token) <= MAX_TOKEN_CHARS
            and estimated_bits(token) >= BOOTSTRAP_MIN_BITS):
        raise InvalidRequest(
            f"{BOOTSTRAP_DESCRIPTION} is too weak: it needs {BOOTSTRAP_MIN_CHARS} to"
            f" {MAX_TOKEN_CHARS} characters and about {BOOTSTRAP_MIN_BITS} bits of"
            " randomness (e.g. the output of `openssl rand -base64 32`)")
