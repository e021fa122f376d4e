"""Who holds a token: its row in ``tokens`` checked into a ``Principal``.

Apart from ``service.tokens`` (which issues and revokes tokens through the ledger) so
that queries can read a token's row in the same statement as what it asks for.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from secrets_ledger.domain.errors import Unauthorized
from secrets_ledger.service.clock import format_time, utc_now

Role = Literal["admin", "writer", "reader", "auditor"]


@dataclass(frozen=True)
class Principal:
    token_id: str
    role: Role
    tenant: str | None  # None for admin tokens, which span every tenant


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


TOKEN_COLUMNS = "token_id, token_hash, role, tenant, expires_at, revoked_at"  # noqa: S105
"""The columns of ``tokens`` that ``principal_of`` checks, in its order."""
TOKEN_ROW = f"SELECT {TOKEN_COLUMNS} FROM tokens WHERE token_hash = %s"
"""The row of the token with a given hash."""


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
