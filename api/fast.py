"""The two hottest requests, reading and writing one secret, answered without FastAPI's
per-request machinery (routing, dependency solving, response re-validation) and without
a worker thread per request: the request is handed to the group-commit writer and
awaited (``BatchWriter.read_async``, ``execute_with_token_async``), and the writer reads
the tokens and values of its whole batch in one statement each. Sixteen requests in
flight are then neither sixteen threads taking turns at the GIL nor sixteen statements.

Only the plain form of each request takes this path: ``GET`` of the current value with
no query string, and ``PUT`` with a JSON body and none of ``If-Match``,
``If-None-Match`` or ``Idempotency-Key``, both with a well-formed bearer token and a
valid tenant name and key. Anything else, and any body that does not parse and validate
exactly as the route's would, goes on to the FastAPI routes (with the body handed on
unread), which stay the reference: they answer every error the fast path does not, and
they are what ``/openapi.json`` documents. What the fast path answers is built the way
the routes build it: the same service calls, in the same order (token, authorization,
then the operation), the same response models serialized the same way, the same
problem+json for every ``LedgerError``, and the matched route set on the scope, so that
the metrics label the request by its route.

It sits inside ``RequestIdAndMetrics`` and ``BodyLimit``: the request id, the body limit,
the metrics and the 500 for an unexpected error are theirs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from fastapi.routing import APIRoute
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import ValidationError
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from secrets_ledger.api.deps import READ_VALUES, WRITE_VALUES, authorize
from secrets_ledger.api.problems import problem
from secrets_ledger.api.routes import secrets as secret_routes
from secrets_ledger.api.schemas import SecretOut, SecretPut, WriteOut
from secrets_ledger.domain import rules
from secrets_ledger.domain.errors import InvalidRequest, LedgerError
from secrets_ledger.domain.tenant import RequestContext
from secrets_ledger.service.ledger import Ledger
from secrets_ledger.service.principals import Role, hash_token, principal_of

# The path of both routes ("{tenant}" is one segment, "{key:path}" the rest).
_SECRET_PATH = re.compile(r"/v1/tenants/([^/]+)/secrets/(.+)")
# Headers that make a request take the routes (conditional or idempotent writes).
_ROUTE_ONLY_HEADERS = frozenset({b"if-match", b"if-none-match", b"idempotency-key"})
_MAX_TOKEN = 512  # as api.deps.principal
_SERIALIZE_SECRET = SecretOut.__pydantic_serializer__.to_json
_SERIALIZE_WRITE = WriteOut.__pydantic_serializer__.to_json


def _route(endpoint: Callable[..., Any]) -> APIRoute:
    for route in secret_routes.router.routes:
        if isinstance(route, APIRoute) and route.endpoint is endpoint:
            return route
    raise LookupError(endpoint.__name__)  # pragma: no cover - a renamed route


class _Plain:
    """What a plain request carries, once its form was checked."""

    __slots__ = ("content_type", "key", "sized", "tenant", "token")

    def __init__(self, tenant: str, key: str, token: str, content_type: str | None,
                 sized: bool) -> None:
        self.tenant = tenant
        self.key = key
        self.token = token
        self.content_type = content_type
        self.sized = sized  # a Content-Length was given


def _plain(scope: Scope) -> _Plain | None:
    """The parts of a plain GET or PUT of one secret, or None to leave it to the routes."""
    if scope.get("query_string") or scope.get("root_path"):
        return None
    match = _SECRET_PATH.fullmatch(scope["path"])
    if match is None:
        return None
    tenant, key = match.group(1), match.group(2)
    try:
        rules.check_tenant_name(tenant)
        rules.check_secret_key(key)
    except InvalidRequest:
        return None
    authorization: str | None = None
    content_type: str | None = None
    sized = False
    for name, value in scope["headers"]:
        if name == b"authorization":
            if authorization is not None:
                return None
            authorization = value.decode("latin-1")
        elif name == b"content-type":
            if content_type is not None:
                return None
            content_type = value.decode("latin-1")
        elif name == b"content-length":
            sized = True
        elif name in _ROUTE_ONLY_HEADERS:
            return None
    if authorization is None:
        return None
    scheme, credentials = get_authorization_scheme_param(authorization)
    token = credentials.strip()
    if scheme.lower() != "bearer" or not token or len(token) > _MAX_TOKEN:
        return None
    return _Plain(tenant, key, token, content_type, sized)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive that hands the messages already read to the next app, then the
    connection's."""
    pending = list(messages)

    async def again() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return again


class FastSecretPaths:
    def __init__(self, app: ASGIApp, ledger: Ledger) -> None:
        self.app = app
        self.ledger = ledger
        self.get_route = _route(secret_routes.get_secret)
        self.put_route = _route(secret_routes.put_secret)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope.get("method")
        if scope["type"] != "http" or method not in ("GET", "PUT"):
            await self.app(scope, receive, send)
            return
        plain = _plain(scope)
        if plain is None:
            await self.app(scope, receive, send)
            return
        if method == "GET":
            scope["route"] = self.get_route
            request_id = scope["state"]["request_id"]
            response = await self._get(plain, request_id)
        else:
            # Without a Content-Length (chunked), a body over the limit is cut short
            # while it is read, and the route's answer to that is its own.
            if not plain.sized or plain.content_type is None \
                    or plain.content_type.lower() != "application/json":
                await self.app(scope, receive, send)
                return
            messages, body = await _read_body(receive)
            parsed = None if body is None else _secret_put(body)
            if parsed is None:  # the route answers what is wrong with it
                await self.app(scope, _replay(messages, receive), send)
                return
            scope["route"] = self.put_route
            request_id = scope["state"]["request_id"]
            response = await self._put(plain, parsed, request_id)
        await response(scope, receive, send)

    # ---- on the event loop: the service awaits its statements and the group commit ------

    async def _get(self, plain: _Plain, request_id: str) -> Response:
        digest = hash_token(plain.token)
        check = _token_check(plain.tenant, digest, READ_VALUES, request_id)
        try:
            secret = await self.ledger.get_secret_with_token_async(plain.tenant, plain.key,
                                                                   digest, check)
        except LedgerError as error:
            return problem(error.status, error.code, error.detail, **error.extra)
        body = _SERIALIZE_SECRET(SecretOut(
            key=secret.key, version=secret.version, value=secret.value,
            metadata=secret.metadata, created_at=secret.created_at,
            created_by=secret.created_by), by_alias=True)
        response = Response(body, media_type="application/json")
        response.headers["ETag"] = f'"{secret.version}"'  # after the others, as the route
        return response

    async def _put(self, plain: _Plain, parsed: SecretPut, request_id: str) -> Response:
        digest = hash_token(plain.token)
        check = _token_check(plain.tenant, digest, WRITE_VALUES, request_id)
        try:
            written = await self.ledger.put_secret_with_token_async(
                plain.tenant, plain.key, parsed.value, parsed.metadata, digest, check)
        except LedgerError as error:
            return problem(error.status, error.code, error.detail, **error.extra)
        body = _SERIALIZE_WRITE(WriteOut(key=plain.key, version=written.version,
                                         created_at=written.created_at), by_alias=True)
        response = Response(body, status_code=201 if written.created else 200,
                            media_type="application/json")
        response.headers["ETag"] = f'"{written.version}"'
        return response


def _token_check(tenant: str, digest: str, permission: frozenset[Role], request_id: str
                 ) -> Callable[[Sequence[Any] | None], RequestContext]:
    """What the service calls with the token's row: the route's ``principal`` and
    ``authorize`` dependencies, then the request's context."""
    def check(row: Sequence[Any] | None) -> RequestContext:
        caller = principal_of(digest, row)
        authorize(caller, tenant, permission)
        return RequestContext(caller.token_id, request_id)

    return check


async def _read_body(receive: Receive) -> tuple[list[Message], bytes | None]:
    """The messages of the request's body and the body (None if the client left)."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, None
        if not message.get("more_body", False):
            return messages, b"".join(m.get("body", b"") for m in messages)


def _secret_put(body: bytes) -> SecretPut | None:
    """The body as the route would take it (``json.loads``, then the model in strict
    mode), or None when it would not: then the route says why."""
    if not body:
        return None
    try:
        return SecretPut.model_validate(json.loads(body), from_attributes=True)
    except (ValueError, ValidationError, RecursionError):  # JSONDecodeError, Unicode... too
        return None
