"""What every route needs: the ledger, the caller's credential, the request's id and
idempotency key, and the REST-specific parts of the contract (ETags, sub-resource names)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request
from fastapi.responses import Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from starlette.types import Scope

from secrets_ledger.core.ledger import Ledger
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.principals import BearerToken, Credential
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.domain import rules
from secrets_ledger.domain.changes import Precondition
from secrets_ledger.domain.errors import InvalidRequest, LedgerError

T = TypeVar("T")
CYCLE = "ledger.server_cycle"  # scope key: the server's request cycle (see client_gone_of)
_PRINTABLE = re.compile(r"[\x21-\x7e]{1,255}")
_ETAG = re.compile(r'"([1-9][0-9]{0,17})"')


# async on purpose: FastAPI runs a plain ``def`` dependency in a worker thread, a hop
# that costs more than these lookups.
async def get_ledger(request: Request) -> Ledger:
    ledger: Ledger = request.app.state.ledger
    return ledger


# Declared so that /openapi.json documents the scheme; the checks are the core's.
_bearer = HTTPBearer(auto_error=False, description="a token from `token create` or the API")


def header(scope: Scope, name: bytes, *, last: bool = False) -> bytes | None:
    """A header's first value (as Starlette's ``headers.get``), or its last (as a dict of
    the headers holds), without building either per request."""
    found = None
    for key, value in scope["headers"]:
        if key == name:
            if not last:
                return bytes(value)
            found = bytes(value)
    return found


def text_header(scope: Scope, name: bytes) -> str | None:
    """A header's first value as text (latin-1, as HTTP and Starlette have it)."""
    raw = header(scope, name)
    return None if raw is None else raw.decode("latin-1")


def credential_of(request: Request) -> Credential:
    """The bearer token the client sent (the core authenticates it); 401 without one."""
    scheme, _, token = (text_header(request.scope, b"authorization") or "").partition(" ")
    return BearerToken.of(token if scheme.lower() == "bearer" else "")


async def get_caller(request: Request, credentials: Annotated[
        HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Credential:
    credential = credential_of(request)
    request.state.credential = credential  # for an error FastAPI finds before the core
    return credential


LedgerDep = Annotated[Ledger, Depends(get_ledger)]
Caller = Annotated[Credential, Depends(get_caller)]


async def get_request_info(request: Request, caller: Caller, ledger: LedgerDep) -> RequestInfo:
    return await request_info_of(request, caller, ledger)


async def request_info_of(request: Request, caller: Credential, ledger: Ledger) -> RequestInfo:
    """The request's id and, when the client sent one, its idempotency key with a hash of
    everything that makes the request (method, path, query, body)."""
    key = text_header(request.scope, b"idempotency-key")
    request_hash = None
    if key is not None:
        if not _PRINTABLE.fullmatch(key):
            await ledger.authenticate(caller)  # a caller with a bad token learns that first
            raise InvalidRequest("Idempotency-Key is 1-255 printable ASCII characters")
        digest = hashlib.sha256()
        for part in (request.method, request.url.path, request.url.query):
            digest.update(part.encode() + b"\0")
        digest.update(await request.body())
        request_hash = digest.hexdigest()
    length = text_header(request.scope, b"content-length")
    return RequestInfo(request.scope["state"]["request_id"], key, request_hash,
                       int(length) if length is not None and length.isdigit() else 0,
                       client_gone_of(request.scope))


def client_gone_of(scope: Scope) -> Callable[[], bool] | None:
    """Whether the client closed its connection, asked from any thread without a round
    trip through the event loop: uvicorn's request cycle (the receiving end ``BodyLimit``
    saw, held weakly) keeps a ``disconnected`` flag. None under another server."""
    held = scope.get(CYCLE)
    if held is None or not hasattr(held(), "disconnected"):
        return None

    def gone() -> bool:  # the request is over once the server let go of its cycle
        cycle = held()
        return cycle is None or bool(cycle.disconnected)
    return gone


Info = Annotated[RequestInfo, Depends(get_request_info)]


async def judged(ledger: Ledger, caller: Credential, tenant: str | None, use_case: UseCase,
                 parse: Callable[[], T]) -> T:
    """``parse()`` of something the client sent; if it is malformed, the refusal comes
    once the caller is admitted for ``use_case``, in the order the core itself keeps."""
    try:
        return parse()
    except LedgerError as error:
        await ledger.refuse(caller, tenant, use_case, error)


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
        rules.check_version(value)
    return Precondition.at_version(value)


def json_response(body: BaseModel, status: int = 200, etag: int | None = None) -> Response:
    """The body as compact JSON, serialized by pydantic directly (the route declares the
    model for /openapi.json; returning a response skips FastAPI re-validating it; a body
    built from the core's own answer may be made with ``model_construct``)."""
    response = Response(body.__pydantic_serializer__.to_json(body), status_code=status,
                        media_type="application/json")
    if etag is not None:
        response.headers["ETag"] = f'"{etag}"'
    return response
