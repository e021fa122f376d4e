"""API tokens: random text shown once, stored only as a SHA-256 hash.

A token is ``slt_<token id>_<secret>``; the id part lets an operator name a token in
logs and revocations without ever seeing the secret part.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from secrets_ledger.domain.errors import InvalidRequest, TokenNotFound
from secrets_ledger.domain.rules import check_text
from secrets_ledger.domain.tenant import RequestContext
from secrets_ledger.service.clock import format_time, utc_now
from secrets_ledger.service.database import Database, fetch_one
from secrets_ledger.service.ledger import Ledger
from secrets_ledger.service.principals import TOKEN_ROW, Principal, Role, hash_token, principal_of

TENANT_ROLES: tuple[Role, ...] = ("writer", "reader", "auditor")
MAX_TTL_SECONDS = 10 * 365 * 24 * 3600


@dataclass(frozen=True)
class IssuedToken:
    token: str
    token_id: str
    role: Role
    tenant: str | None
    expires_at: str | None


class TokenStore:
    def __init__(self, db: Database, ledger: Ledger) -> None:
        self.db = db
        self.ledger = ledger

    def _insert(self, token: str, token_id: str, role: Role, tenant: str | None,
                description: str, expires_at: str | None) -> None:
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO tokens (token_id, token_hash, role, tenant, description,"
                " created_at, expires_at, revoked_at) VALUES (%s, %s, %s, %s, %s, %s, %s, NULL)",
                (token_id, hash_token(token), role, tenant, description,
                 format_time(utc_now()), expires_at),
            )

    def issue(self, role: Role, tenant: str | None, ttl_seconds: int | None,
              description: str, ctx: RequestContext) -> IssuedToken:
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
            self.ledger.record_token_issued(tenant, token_id, role, expires_at, ctx)
        self._insert(token, token_id, role, tenant, description, expires_at)
        return IssuedToken(token, token_id, role, tenant, expires_at)

    def ensure_bootstrap(self, token: str) -> None:
        """Makes ``token`` an admin token (idempotent; for containers and scripts)."""
        with self.db.read() as cur:
            cur.execute("SELECT 1 FROM tokens WHERE token_hash = %s", (hash_token(token),))
            if cur.fetchone() is not None:
                return
        self._insert(token, f"tok_boot{secrets.token_hex(4)}", "admin", None,
                     "LEDGER_BOOTSTRAP_TOKEN", None)

    def has_admin(self) -> bool:
        with self.db.read() as cur:
            cur.execute("SELECT 1 FROM tokens WHERE role = 'admin' AND revoked_at IS NULL")
            return cur.fetchone() is not None

    def revoke(self, tenant: str, token_id: str, ctx: RequestContext) -> None:
        with self.db.transaction() as cur:
            cur.execute(
                "UPDATE tokens SET revoked_at = %s WHERE token_id = %s AND tenant = %s"
                " AND revoked_at IS NULL",
                (format_time(utc_now()), token_id, tenant),
            )
            changed = cur.rowcount
        if changed == 0:
            raise TokenNotFound("no such live token for this tenant")
        self.ledger.record_token_revoked(tenant, token_id, ctx)

    def authenticate(self, token: str) -> Principal:
        digest = hash_token(token)
        return principal_of(digest, fetch_one(self.db, TOKEN_ROW, (digest,)))

