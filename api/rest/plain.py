"""Plain routes: endpoints that take only the request, served without FastAPI's
per-request machinery.

The PUT and GET of one secret take nearly every request a ledger serves, and FastAPI's
routing and dependency solving cost them several times what the rest of the request
costs (bench/http.py under py-spy: about 0.3 ms of the event loop per request). Their
endpoints are plain: they read the path, query, headers and body with the functions
here, which answer errors as the declared routes do, and document their parameters for
/openapi.json with the ``openapi_extra`` built here. ``PlainRoutes`` finds a request's
route in the app's own route table, in the router's order, and awaits a plain endpoint
directly; any other request goes on to FastAPI, which finds the same route.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from starlette.types import ASGIApp, Receive, Scope, Send

from secrets_ledger.api.rest.deps import text_header
from secrets_ledger.api.rest.problems import describe, problem_of
from secrets_ledger.core.ledger import Ledger
from secrets_ledger.core.principals import Credential
from secrets_ledger.domain.errors import InvalidRequest, LedgerError

M = TypeVar("M", bound=BaseModel)


def _is_json(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind.startswith("application/") and (kind == "application/json"
                                                or kind.endswith("+json"))


async def body_of(request: Request, model: type[M], caller: Credential, ledger: Ledger) -> M:
    """The JSON body as ``model``. A body that is not JSON is refused at once; one of the
    wrong shape once the caller's token is known to be good (as FastAPI's declared body
    and the problem handlers do)."""
    raw = await request.body()
    data: Any = None
    if raw:
        content_type = text_header(request.scope, b"content-type")
        if content_type is not None and _is_json(content_type):
            try:
                data = json.loads(raw)
            except json.JSONDecodeError:
                raise InvalidRequest("the body is not valid JSON") from None
            except Exception:  # nested past the parser's recursion, undecodable text...
                raise InvalidRequest("There was an error parsing the body") from None
        else:
            data = raw  # not JSON: the model refuses it
    try:
        return model.model_validate(data)
    except ValidationError as error:
        refusal = InvalidRequest(describe(error.errors(include_input=False)))
    await ledger.authenticate(caller)
    raise refusal


T = TypeVar("T")
_POSITIVE_INT = TypeAdapter(Annotated[int, Field(ge=1)])  # as ``Query(ge=1)`` validates


async def positive_int(request: Request, name: str, caller: Credential,
                       ledger: Ledger) -> int | None:
    """An optional query parameter that must be an integer of at least 1."""
    return await _query_value(request, name, caller, ledger, _POSITIVE_INT)


_BOOLEAN = TypeAdapter(bool)  # "true"/"false"/"1"/"0"…, as ``Query()`` reads a bool


async def flag(request: Request, name: str, caller: Credential, ledger: Ledger) -> bool:
    """An optional boolean query parameter (absent: false)."""
    found: bool | None = await _query_value(request, name, caller, ledger, _BOOLEAN)
    return found is True


async def _query_value(request: Request, name: str, caller: Credential, ledger: Ledger,
                       adapter: TypeAdapter[T]) -> T | None:
    """A query parameter validated as ``Query()`` would (None when absent); a bad one
    is a 400 once the caller is authenticated (401 comes first)."""
    text = request.query_params.get(name)
    if text is None:
        return None
    try:
        return adapter.validate_python(text)
    except ValidationError:
        refusal = InvalidRequest(f"invalid request: check query.{name}")
    await ledger.authenticate(caller)
    raise refusal


def parameter(place: str, name: str, schema: dict[str, Any], description: str = ""
              ) -> dict[str, Any]:
    return {"name": name, "in": place, "required": place == "path", "schema": schema,
            "description": description}


def path_parameters(*names: str) -> list[dict[str, Any]]:
    return [parameter("path", name, {"type": "string"}) for name in names]


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    return {"required": True,
            "content": {"application/json": {"schema": model.model_json_schema()}}}


BEARER: list[dict[str, list[str]]] = [{"HTTPBearer": []}]
"""The security requirement the declared routes get from their bearer dependency."""


Endpoint = Callable[[Request], Awaitable[Response]]


class PlainRoutes:
    """Serves the plain routes among ``routes`` (the app's routes, in its router's order):
    the first route whose path and method match a request is the one FastAPI would pick;
    if its endpoint is plain, it is awaited here, its refusals answered as problem+json."""

    def __init__(self, app: ASGIApp, routes: Sequence[APIRoute],
                 plain: Collection[Endpoint]) -> None:
        self.app = app
        self.plain = set(plain)
        # By method, in order: the first route of a request's method whose path matches
        # is the one the router picks (a route of another method only ever matches
        # partly, and the router goes on past it).
        self.routes: dict[str, list[APIRoute]] = {}
        for route in routes:
            for method in route.methods or ():
                self.routes.setdefault(method, []).append(route)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and not scope.get("root_path"):  # mounted: FastAPI's
            path = scope["path"]
            for route in self.routes.get(scope["method"], ()):
                match = route.path_regex.match(path)
                if match is None:
                    continue
                if route.endpoint in self.plain:
                    await self._serve(route, match.groupdict(), scope, receive, send)
                    return
                break
        await self.app(scope, receive, send)

    @staticmethod
    async def _serve(route: APIRoute, params: dict[str, str], scope: Scope, receive: Receive,
                     send: Send) -> None:
        scope["route"] = route  # the metrics name the route
        scope["path_params"] = {name: route.param_convertors[name].convert(value)
                                for name, value in params.items()}
        try:
            response = await route.endpoint(Request(scope, receive, send))
        except LedgerError as error:
            response = problem_of(error)
        await response(scope, receive, send)
