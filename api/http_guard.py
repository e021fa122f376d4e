"""The HTTP connection as ``serve`` runs it: uvicorn's httptools protocol with deadlines
for a request's headers and body, and a cap on connections that spares the probes.

uvicorn times out only idle keep-alive connections: a client sending one header byte at a
time holds its socket (and a file descriptor) for ever. Here a request's headers must
arrive within ``header_timeout`` and its body within ``body_timeout``, or the connection
is closed. Beyond ``max_connections`` open connections, a request is answered 503 at
once, except ``/healthz`` and ``/readyz``, so that an orchestrator still sees the truth.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

PROBES = (b"/healthz", b"/readyz")


class GuardedHttpProtocol(HttpToolsProtocol):
    header_timeout = 10.0
    body_timeout = 30.0
    max_connections = 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm(self.header_timeout)  # the next request on a kept-alive connection

    def on_headers_complete(self) -> None:
        self._arm(self.body_timeout)
        # uvicorn's own cap answers 503 past ``limit_concurrency``: lifted for the probes.
        path = self.url.split(b"?", 1)[0]
        self.limit_concurrency = None if path in PROBES else self.max_connections
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()


def guarded_http(header_timeout: float, body_timeout: float,
                 max_connections: int) -> type[GuardedHttpProtocol]:
    """The protocol class with these limits (uvicorn builds one instance per connection)."""
    return type("ConfiguredHttpProtocol", (GuardedHttpProtocol,), {
        "header_timeout": header_timeout, "body_timeout": body_timeout,
        "max_connections": max_connections})
