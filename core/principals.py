"""Who is asking: credentials as front ends present them, and the principals they prove.

A front end turns what its client sent into a ``Credential``: a ``BearerToken`` (the
REST API's ``Authorization: Bearer``; Vault's ``X-Vault-Token`` next), or a
``Principal`` it has established itself (the command line acts as the local operator).
The core authenticates a bearer token against the token store: one statement for every
request of a group commit, or joined into the statement that reads a value.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from secrets_ledger.domain.errors import Unauthorized
from secrets_ledger.domain.times import format_time, utc_now

Role = Literal["admin", "writer", "reader", "auditor"]
MAX_TOKEN_CHARS = 512


@dataclass(frozen=True)
class Principal:
    token_id: str  # the actor every event and audit row names
    role: Role
    tenant: str | None  # None for admin tokens, which span every tenant

    @classmethod
    def operator(cls, actor: str = "cli") -> Principal:
        """The operator at the machine: the command line and ``serve``'s start-up, which
        hold the storage's credentials already."""
        return cls(actor, "admin", None)


@dataclass(frozen=True)
class BearerToken:
    """A token as a client presented it; only its SHA-256 is kept (and compared)."""

    digest: str

    @classmethod
    def of(cls, token: str) -> BearerToken:
        token = token.strip()
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise Unauthorized("send Authorization: Bearer <token>")
        return cls(hash_token(token))

    def __repr__(self) -> str:  # never the digest in a log line
        return "BearerToken(...)"


Credential = Principal | BearerToken


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


BOOTSTRAP_ID_PREFIX = "tok_boot"
"""The ids of tokens made from ``LEDGER_BOOTSTRAP_TOKEN`` (issued ids are ``tok_<hex>``)."""


class TokenRecord(NamedTuple):
    """A token as its listing shows it: never the token, nor its hash. ``created_by`` and
    ``revoked_by`` name the actor (a token id, or ``cli``/``serve``)."""

    token_id: str
    role: str
    tenant: str | None
    description: str
    created_at: str
    created_by: str | None  # None for tokens made before it was recorded
    expires_at: str | None
    revoked_at: str | None
    revoked_by: str | None


TOKEN_COLUMNS = ("token_id", "token_hash", "role", "tenant", "expires_at", "revoked_at")
"""The columns of a token's row that ``principal_of`` checks, in its order."""


def principal_of(digest: str, row: Sequence[Any] | None) -> Principal:
    """The principal of a token whose SHA-256 is ``digest``, from its ``TOKEN_COLUMNS``
    row (None, or a row of NULLs, when no token has that hash); Unauthorized unless the
    token is live. Another process's revocation shows in the row at once: the row is
    read for every request, never cached."""
    if row is None or row[1] is None or not hmac.compare_digest(str(row[1]), digest):
        raise Unauthorized("the token is not valid")
    token_id, _, role, tenant, expires_at, revoked_at = row
    if revoked_at is not None:
        raise Unauthorized("the token was revoked")
    if expires_at is not None and expires_at <= format_time(utc_now()):
        raise Unauthorized("the token has expired")
    return Principal(str(token_id), role, tenant)
