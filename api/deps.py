"""Dependencies: the service objects, the caller's identity, and request context."""

from __future__ import annotations

import hashlib
import re
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from secrets_ledger.domain.errors import Forbidden, InvalidRequest, TenantNotFound, Unauthorized
from secrets_ledger.domain.rules import check_version
from secrets_ledger.domain.tenant import Precondition, RequestContext
from secrets_ledger.service.ledger import Ledger
from secrets_ledger.service.principals import Principal, Role
from secrets_ledger.service.tokens import TokenStore

READ_VALUES: frozenset[Role] = frozenset({"writer", "reader"})
WRITE_VALUES: frozenset[Role] = frozenset({"writer"})
READ_METADATA: frozenset[Role] = frozenset({"writer", "reader", "auditor"})
AUDIT: frozenset[Role] = frozenset({"auditor"})
ADMIN: frozenset[Role] = frozenset()

_PRINTABLE = re.compile(r"[\x21-\x7e]{1,255}")
_ETAG = re.compile(r'"([1-9][0-9]{0,17})"')


# async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a hop
# that costs more than these lookups.
async def get_ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


async def get_tokens(request: Request) -> TokenStore:
    tokens: TokenStore = request.app.state.tokens
    return tokens


# Declared so that /openapi.json documents the scheme; the checks are ours (401 problems).
_bearer = HTTPBearer(auto_error=False, description="a token from `token create` or the API")


def principal(request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None,
                                                      Depends(_bearer)]) -> Principal:
    token = credentials.credentials.strip() if credentials is not None else ""
    if not token or len(token) > 512:
        raise Unauthorized("send Authorization: Bearer <token>")
    tokens: TokenStore = request.app.state.tokens
    return tokens.authenticate(token)


Caller = Annotated[Principal, Depends(principal)]
LedgerDep = Annotated[Ledger, Depends(get_ledger)]


def authorize(caller: Principal, tenant: str | None, allowed: frozenset[Role]) -> None:
    """Admins may do everything; a tenant token only its roles' rights on its own tenant.

    A tenant token used on another tenant gets the answer an unknown tenant gets, so
    that it learns nothing about which other tenants exist.
    """
    if caller.role == "admin":
        return
    if tenant is None or caller.tenant != tenant:
        if tenant is None:
            raise Forbidden("this needs an admin token")
        raise TenantNotFound("no such tenant")
    if caller.role not in allowed:
        raise Forbidden(f"the {caller.role} role may not do this")


async def request_context(request: Request, caller: Caller) -> RequestContext:
    key = request.headers.get("idempotency-key")
    request_hash = None
    if key is not None:
        if not _PRINTABLE.fullmatch(key):
            raise InvalidRequest("Idempotency-Key is 1-255 printable ASCII characters")
        digest = hashlib.sha256()
        for part in (request.method, request.url.path, request.url.query):
            digest.update(part.encode() + b"\0")
        digest.update(await request.body())
        request_hash = digest.hexdigest()
    return RequestContext(caller.token_id, request.state.request_id, key, request_hash)


Context = Annotated[RequestContext, Depends(request_context)]


def parse_precondition(if_match: str | None, if_none_match: str | None) -> Precondition | None:
    if if_match is not None and if_none_match is not None:
        raise InvalidRequest("send If-Match or If-None-Match, not both")
    if if_none_match is not None:
        if if_none_match.strip() != "*":
            raise InvalidRequest('If-None-Match supports only "*"')
        return Precondition("absent")
    if if_match is None:
        return None
    if if_match.strip() == "*":
        return Precondition("live")
    match = _ETAG.fullmatch(if_match.strip())
    if match is None:
        raise InvalidRequest('If-Match is "*" or a quoted version number such as "3"')
    return Precondition("version", int(match.group(1)))


def if_version(value: int | None) -> Precondition | None:
    if value is None:
        return None
    if value != 0:
        check_version(value)
    return Precondition.at_version(value)
