"""The HTTP connection as ``serve`` runs it: uvicorn's httptools protocol with deadlines
for a request's headers and body, and a cap on connections that spares the probes.

uvicorn times out only idle keep-alive connections: a client sending one header byte at a
time holds its socket (and a file descriptor) for ever. Here a request's headers must
arrive within ``header_timeout`` and its body within ``body_timeout``, or the connection
is closed. At ``max_connections`` open connections (never more than the process's file
limit allows), a new connection evicts the oldest one still waiting for its headers (a
slow client's), so that descriptors never run out; a client that leaves what was sent
unread for ``send_timeout`` is cut off; and past the cap a request is
answered 503 at once, except ``/healthz`` and ``/readyz``, so that an orchestrator still
sees the truth.
"""

from __future__ import annotations

import asyncio
import resource
import weakref
from collections import OrderedDict
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

PROBES = (b"/healthz", b"/readyz")
SPARE_DESCRIPTORS = 64  # for files, database connections and the listening socket
SWEEP_SECONDS = 0.5
BODY_WRITER = "secrets_ledger.body_writer"
"""The scope extension of a request served here: a ``BodyWriter`` for its response."""


class BodyWriter:
    """Writes a chunk of a started, streamed response straight to its connection, or
    says it cannot (the client has not read what was sent, or left): for the change
    feed's fan-out, which writes one page to many streams in one loop rather than
    resuming each stream's coroutine through every ASGI layer. Frames the chunk as
    uvicorn does (a streamed response without a length is chunked); the response's end
    still goes through ASGI ``send``.

    It holds its request weakly: the request's scope holds it, and a strong reference
    back would make every request a reference cycle, freed only by the cycle collector,
    whose full collections then stopped the process for 60-160 ms every 1.5 s under
    load (the change feed's p99)."""

    # The last chunk and its frame: the fan-out writes one chunk to every stream in turn,
    # framed once rather than copied per stream (the event loop's thread only).
    _framed: tuple[bytes, bytes] = (b"", b"")

    def __init__(self, cycle: RequestResponseCycle) -> None:
        self.cycle = weakref.ref(cycle)

    def __call__(self, chunk: bytes) -> bool:
        cycle = self.cycle()
        if (cycle is None or cycle.disconnected or cycle.flow.write_paused
                or not cycle.response_started or cycle.response_complete
                or not cycle.chunked_encoding or not chunk):
            return False
        framed = BodyWriter._framed
        if framed[0] is not chunk:
            framed = BodyWriter._framed = (chunk, b"%x\r\n%b\r\n" % (len(chunk), chunk))
        cycle.transport.write(framed[1])
        return True


class GuardedHttpProtocol(HttpToolsProtocol):
    header_timeout = 10.0
    body_timeout = 30.0
    max_connections = 1024
    send_timeout = 30.0

    # Connections (of every instance) still waiting for a request's headers, oldest first.
    waiting: OrderedDict[GuardedHttpProtocol, None]
    sweeping: list[asyncio.TimerHandle]  # the one sweep of the server's loop, once started

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline = 0.0  # loop time past which the request is too slow (0: none)
        self._send_deadline = 0.0  # ... past which a client has not read what was sent

    # A deadline is a number set per request, checked by one sweep a second: a timer per
    # request (scheduled, then cancelled) cost the hot path about 5% of its requests.
    def _arm(self, seconds: float) -> None:
        self._deadline = self.loop.time() + seconds
        self._swept()

    def _swept(self) -> None:
        """Starts the server's one sweep, if not yet started."""
        if not self.sweeping:
            self.sweeping.append(self.loop.call_later(SWEEP_SECONDS, self._sweep))

    def _disarm(self) -> None:
        self._deadline = 0.0

    def _sweep(self) -> None:
        now = self.loop.time()
        for connection in list(self.connections):
            if isinstance(connection, GuardedHttpProtocol) and (
                    0 < connection._deadline < now or 0 < connection._send_deadline < now):
                connection._too_slow()
        self.sweeping[:] = [self.loop.call_later(SWEEP_SECONDS, self._sweep)]

    def _too_slow(self) -> None:
        self._deadline = self._send_deadline = 0.0
        self.waiting.pop(self, None)
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections and self.waiting:
            oldest = next(iter(self.waiting))
            oldest._too_slow()  # a slow client's socket, rather than a new client refused
        self._awaiting_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._send_deadline = 0.0
        self.waiting.pop(self, None)
        super().connection_lost(exc)

    # A client that leaves a response unread (a change stream's slow subscriber) keeps
    # the transport's buffer full: past ``send_timeout`` its connection is closed rather
    # than the server buffering for it; a stream's subscriber resumes from its cursor.
    def pause_writing(self) -> None:
        super().pause_writing()
        self._send_deadline = self.loop.time() + self.send_timeout
        self._swept()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._send_deadline = 0.0

    def _awaiting_headers(self) -> None:
        self._arm(self.header_timeout)
        self.waiting[self] = None

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._awaiting_headers()  # also the next request on a kept-alive connection

    def on_headers_complete(self) -> None:
        self.waiting.pop(self, None)
        self._arm(self.body_timeout)
        # Connections still waiting for headers do not count: each can be evicted. Past
        # the cap uvicorn answers 503 (``limit_concurrency`` 0 forces it), never a probe.
        path = self.url.split(b"?", 1)[0]
        busy = len(self.connections) - len(self.waiting)
        self.limit_concurrency = 0 if busy > self.max_connections and path not in PROBES else None
        super().on_headers_complete()
        assert self.cycle is not None  # the request's, just made
        extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
        extensions[BODY_WRITER] = BodyWriter(self.cycle)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()


def connection_cap(configured: int) -> int:
    """The configured cap, lowered to what the file limit leaves room for."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured
    return max(1, min(configured, soft - SPARE_DESCRIPTORS))


def guarded_http(header_timeout: float, body_timeout: float, max_connections: int,
                 send_timeout: float = 30.0) -> type[GuardedHttpProtocol]:
    """The protocol class with these limits (uvicorn builds one instance per connection)."""
    return type("ConfiguredHttpProtocol", (GuardedHttpProtocol,), {
        "header_timeout": header_timeout, "body_timeout": body_timeout,
        "max_connections": connection_cap(max_connections), "send_timeout": send_timeout,
        "waiting": OrderedDict(), "sweeping": []})


class GuardedH11Protocol(H11Protocol):
    """h11 (which takes any method token: Vault's ``LIST``) with the same deadlines: a
    request's headers within ``header_timeout``, its body within ``body_timeout``, or
    the connection is closed. One timer per request: the Vault port's traffic is far
    from the native hot path's."""

    header_timeout = 10.0
    body_timeout = 30.0

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

    def data_received(self, data: bytes) -> None:
        cycle = self.cycle
        super().data_received(data)
        if self.cycle is not cycle:  # a request's headers arrived: now its body
            self._arm(self.body_timeout)
        if self.cycle is not None and not self.cycle.more_body:
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm(self.header_timeout)  # the next request's headers (or keep-alive's end)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def guarded_h11(header_timeout: float, body_timeout: float) -> type[GuardedH11Protocol]:
    return type("ConfiguredH11Protocol", (GuardedH11Protocol,), {
        "header_timeout": header_timeout, "body_timeout": body_timeout})
