"""``secrets-ledger serve``: the runtime (migrations, projector thread), the bootstrap admin
token, and uvicorn serving the REST app.

uvicorn handles SIGTERM: it stops accepting, lets in-flight requests finish (every
acknowledged write was committed before its response), then the runtime closes.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import socket
from collections.abc import Callable
from typing import Any

import uvicorn

from secrets_ledger.api.aws.app import AwsFacade
from secrets_ledger.api.http_guard import guarded_h11, guarded_http
from secrets_ledger.api.rest.app import create_app
from secrets_ledger.api.vault.app import VaultFacade
from secrets_ledger.core.settings import Settings
from secrets_ledger.grouped_runtime import open_runtime


def serve(settings: Settings, host: str, port: int, *, follow: bool = True,
          aws_port: int | None = None, vault_port: int | None = None) -> int:
    with open_runtime(settings, follow=follow, serving=True) as runtime:
        configured = settings.bootstrap_token
        first_token = asyncio.run(runtime.ledger.tokens.bootstrap(
            configured.get_secret_value() if configured is not None else None))
        if first_token is not None:
            # Shown once, on stdout only; the store keeps nothing but its hash.
            print(f"admin token (shown once, keep it safe): {first_token}", flush=True)
        native = create_app(runtime.ledger, runtime.lag, settings.readiness_max_lag)
        apps: dict[int, Any] = {port: native}
        if aws_port is not None:
            apps[aws_port] = AwsFacade(runtime.ledger, settings.aws_account_id,
                                       native.state.telemetry.registry)
        if vault_port is not None:
            apps[vault_port] = VaultFacade(runtime.ledger, native.state.telemetry.registry)
        sockets = [uvicorn.Config(native, host=host, port=p).bind_socket() for p in apps]
        config = uvicorn.Config(
            ByPort(apps, native), host=host, port=port, timeout_graceful_shutdown=30,
            access_log=False, log_level="info", server_header=False,
            http=protocol_by_port(
                guarded_http(settings.header_timeout, settings.body_timeout,
                             settings.max_connections, settings.send_timeout),
                # Vault's LIST method is no method httptools knows: h11 takes any token.
                {vault_port: guarded_h11(settings.header_timeout, settings.body_timeout)}
                if vault_port is not None else {}),
            limit_concurrency=settings.max_connections,
            timeout_keep_alive=int(settings.keep_alive_timeout))
        # uvicorn restores the handler it found and re-raises SIGTERM once it has drained:
        # with this one in place, run() returns and the runtime below closes cleanly.
        signal.signal(signal.SIGTERM, lambda signum, frame: None)
        steady_collector()
        FeedEndingServer(config, runtime.ledger.changes.close).run(sockets=sockets)
    return 0


YOUNG_COLLECTION_EVERY = 10_000
"""Allocations (net) between two collections of the youngest generation (CPython: 700)."""


def steady_collector() -> None:
    """Sets the cycle collector for serving, once start-up is done.

    A full collection stops every thread of the process for as long as it traverses
    every tracked object. Under 16 writers it ran every 1.5 s for 55-165 ms, and the
    change feed's p99 was made of these pauses (bench/feed.py): start-up leaves about
    120,000 objects (modules, classes, the app) that live until exit, and the objects of
    requests in flight, caught by a young collection every 700 allocations, kept pushing
    the old generation past the growth that triggers a full collection. Frozen,
    start-up's objects are never traversed again; collecting the young every 10,000
    allocations promotes far fewer objects that die a moment later. Cyclic garbage is
    still collected, only later (and a request makes none: see ``api.http_guard``).

    Measured (one process, 16 writers, one subscriber, 8 s each): delivery p99 139-158
    ms with requests already freed without the collector; 106 ms frozen; 84 ms frozen
    and collecting the young every 10,000 (two full collections in 45 s, against 25).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, 10, 10)


class FeedEndingServer(uvicorn.Server):
    """Ends the change streams first when it shuts down: uvicorn waits for every open
    response, and a stream would hold it for the whole graceful timeout. Each stream
    ends with an ``error`` event (unavailable); its subscriber resumes from its cursor."""

    def __init__(self, config: uvicorn.Config, end_streams: Callable[[], None]) -> None:
        super().__init__(config)
        self.end_streams = end_streams

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.end_streams()
        await super().shutdown(sockets)


def protocol_by_port(default: type[Any], others: dict[int, type[Any]]) -> type[Any]:
    """One protocol class for uvicorn that becomes, per connection, the protocol of the
    port the connection came in on (the asyncio transport is handed over)."""

    class ProtocolByPort(asyncio.Protocol):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._args, self._kwargs = args, kwargs

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            port = transport.get_extra_info("sockname")[1]
            chosen = others.get(port, default)(*self._args, **self._kwargs)
            transport.set_protocol(chosen)
            chosen.connection_made(transport)

    return ProtocolByPort


class ByPort:
    """One server, several sockets: each request goes to the app of the port it came in
    on (the native API, or a façade with its own errors, limits and metrics)."""

    def __init__(self, apps: dict[int, Any], default: Any) -> None:
        self.apps = apps
        self.default = default

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        server = scope.get("server")
        app = self.apps.get(server[1], self.default) if server else self.default
        # uvicorn passes its lifespan events to the native app, which owns them.
        await app(scope, receive, send)
