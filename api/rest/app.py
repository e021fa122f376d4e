"""The FastAPI application: routers, problem+json, request ids, body limit, metrics."""

from __future__ import annotations

import logging
import re
import time
import uuid
import weakref
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.telemetry import TelemetryConfig
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.datastructures import MutableHeaders

from secrets_ledger.api.rest.deps import CYCLE, header
from secrets_ledger.api.rest.openapi import describe_problems
from secrets_ledger.api.rest.plain import PlainRoutes
from secrets_ledger.api.rest.problems import install_problem_handlers, problem
from secrets_ledger.api.rest.routes import (
    audit,
    changes,
    ops,
    secrets,
    tenants,
    tlog,
    tokens,
)
from secrets_ledger.core.ledger import Ledger

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1_048_576  # a value is at most 64 KiB; a transaction of 100 fits easily
# FastAPI's own OpenTelemetry hooks stay off, whatever providers the process has: its
# log records of validation failures and exceptions carry their messages, which may
# quote a request body (a secret value). The ledger's metrics are Prometheus
# (``/metrics``); and asking for the global providers on every request costs the event
# loop about 8% of a request (py-spy, bench/http.py --profile).
NO_OPENTELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False,
                                     "operation_spans": False, "auto_configure": False}
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")

ASGIApp = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]],
                    Callable[[dict[str, Any]], Awaitable[None]]], Awaitable[None]]


@dataclass
class Telemetry:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        self.requests = Counter("ledger_http_requests_total", "HTTP requests",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("ledger_http_request_duration_seconds", "HTTP latency",
                                 ["method", "route", "status"], registry=self.registry)
        self.events_written = Counter("ledger_events_written_total",
                                      "events this process stored", registry=self.registry)
        self.projection_lag = Gauge("ledger_projection_lag_events",
                                    "events stored but not yet in every view",
                                    registry=self.registry)
        self.queue = {name: Gauge(f"ledger_writer_{name}", text, registry=self.registry)
                      for name, text in (
                          ("queued_jobs", "commands and value reads waiting for the writer"),
                          ("queued_bytes", "request bytes waiting for the writer"),
                          ("shed_requests", "requests refused (503) since start: queue full"),
                          ("abandoned_requests", "requests dropped since start: client gone"))}
        self.feed = {name: Gauge(f"ledger_feed_{name}", text, registry=self.registry)
                     for name, text in (
                         ("store_reads", "the change feed's reads of the store since start"),
                         ("delivered_pages", "change pages the fan-out wrote to a stream"),
                         ("refused_pages", "change pages a stream refused: its client is"
                                           " slow or gone (it gets them as it reads)"))}


class BodyLimit:
    """Refuses bodies over the limit before they are read into memory (413)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # The server's request cycle (the receiving end, before wrapping), held weakly: the
        # cycle holds this scope, and a strong reference back would leave every request to
        # the cycle collector (see ``api.http_guard.BodyWriter``).
        cycle = getattr(receive, "__self__", None)
        scope[CYCLE] = weakref.ref(cycle) if cycle is not None else None
        length = header(scope, b"content-length", last=True)
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            status = 413 if length.isdigit() else 400
            response = problem(status, "value_too_large" if status == 413 else "invalid_request",
                               "the request body is too large or its length is malformed")
            await response(scope, receive, send)
            return
        seen = 0

        async def limited() -> dict[str, Any]:
            nonlocal seen
            message: dict[str, Any] = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await problem(413, "value_too_large", "the request body is too large")(
                scope, receive, send)


class _TooLarge(BaseException):
    """Not an ``Exception``: body parsers that turn any error into a 400 must let it
    through to ``BodyLimit``, which answers 413 (a chunked body has no length to check)."""


class RequestIdAndMetrics:
    """Gives every response an ``X-Request-Id`` (the client's, when well formed), counts
    and times it by route and status, and answers an unexpected error with a 500 problem.

    Plain ASGI rather than ``@app.middleware("http")``: that wrapper costs a task and a
    stream per request on the event loop, which serves every request of the process.
    """

    def __init__(self, app: ASGIApp, telemetry: Telemetry) -> None:
        self.app = app
        self.telemetry = telemetry

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given_raw = header(scope, b"x-request-id", last=True)
        given = given_raw.decode("latin-1") if given_raw is not None else None
        request_id = given if given and _REQUEST_ID.fullmatch(given) else str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: MutableMapping[str, Any]) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = message["status"], True
                MutableHeaders(scope=message).append("X-Request-Id", request_id)
            await send(message)

        try:
            if given is not None and given != request_id:
                await problem(400, "invalid_request",
                              "X-Request-Id is 1-128 characters of [A-Za-z0-9._:/+=-]")(
                    scope, receive, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        except Exception as error:  # answered here, so the connection stays usable
            log.error("unexpected %s on %s %s", type(error).__name__, scope.get("method"),
                      scope.get("path"))
            if response_started:
                raise
            await problem(500, "internal_error", "an unexpected error; it was logged")(
                scope, receive, send_with_id)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            labels = (str(scope.get("method")), route, str(status))
            self.telemetry.requests.labels(*labels).inc()
            self.telemetry.latency.labels(*labels).observe(time.perf_counter() - started)


def create_app(ledger: Ledger, projection_lag: Callable[[], int],
               readiness_max_lag: int) -> FastAPI:
    """The REST application over ``ledger``; ``projection_lag`` tells readiness and the
    metrics how far the views are behind the event store."""
    app = FastAPI(title="secrets-ledger", version="1",
                  description="An event-sourced, encrypted, per-tenant secrets ledger.",
                  # No /docs or /redoc: FastAPI's pages load their scripts from a CDN,
                  # which a secrets store must not make its operators' browsers run.
                  docs_url=None, redoc_url=None, telemetry=NO_OPENTELEMETRY)
    app.state.ledger = ledger
    app.state.projection_lag = projection_lag
    app.state.readiness_max_lag = readiness_max_lag
    app.state.telemetry = telemetry = Telemetry()
    ledger.on_saved(telemetry.events_written.inc)
    install_problem_handlers(app)
    describe_problems(app)
    # The secrets' routes first: the router tries routes in order, and they take nearly
    # every request.
    routers = [module.router for module in (secrets, audit, changes, tlog, tenants, tokens,
                                                ops)]
    for router in routers:
        app.include_router(router)
    # Innermost: the plain routes are served straight from the same route table.
    app.add_middleware(PlainRoutes, plain=secrets.PLAIN,
                       routes=[r for router in routers for r in router.routes
                               if isinstance(r, APIRoute)])
    # Added next, so it runs inside the request-id middleware: its 413 gets the header too.
    app.add_middleware(BodyLimit)
    app.add_middleware(RequestIdAndMetrics, telemetry=telemetry)
    return app
