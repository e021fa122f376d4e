"""SSE subscribers for bench/feed.py, run as their own process (not a benchmark itself).

    python bench/_subscribers.py < spec.json

Spec: ``{"host", "port", "path", "token", "count", "after"}``. Opens ``count`` change
streams and prints ``READY`` once every stream has answered. Every ``TIMED``-th stream
then records, for each change it receives, the delay from the change's ``at`` (the
event's time, taken just before its commit) to the arrival of the bytes that carried
it; the others only keep what they receive, parsed once the run is over. Stops when
stdin closes (the driver is done writing) and a further second passes; prints one JSON
line: delays' percentiles, changes per stream, and whether every stream saw the same
changes, each once, in order.

The subscribers share the machine's two cores with the server, and should measure it
rather than themselves: one thread reads every socket as the kernel says it is ready
(``selectors``), a ``recv`` each, with nothing else per read for the streams not
timed. (Through asyncio's streams, the same reads cost this process a third of a core
at 200 subscribers, taken from the server it measures.)
"""

from __future__ import annotations

import json
import selectors
import socket
import sys
import threading
import time
from datetime import datetime
from typing import Any

CHANGE = b'data: {"position":'
TIMED = 10
AT = b'"at":"'
_times: dict[bytes, float] = {}  # the streams share the changes: parse each time once


def at_seconds(text: bytes) -> float:
    seconds = _times.get(text)
    if seconds is None:
        seconds = _times[text] = datetime.fromisoformat(
            text.decode().replace("Z", "+00:00")).timestamp()
    return seconds


def positions(received: list[bytes]) -> list[int]:
    lines = b"".join(received).split(b"\n")
    return [int(line[len(CHANGE):line.index(b",")]) for line in lines
            if line.startswith(CHANGE)]


def opened(spec: dict[str, Any]) -> tuple[socket.socket, bytes]:
    """A stream, once its response's headers have arrived, and what followed them."""
    sock = socket.create_connection((spec["host"], spec["port"]))
    sock.sendall((f"GET {spec['path']}?after={spec['after']} HTTP/1.1\r\nHost: bench\r\n"
                  f"Authorization: Bearer {spec['token']}\r\n"
                  "Accept: text/event-stream\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed a stream before answering")
        head += chunk
    if not head.startswith(b"HTTP/1.1 200"):
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
    sock.setblocking(False)
    return sock, head.split(b"\r\n\r\n", 1)[1]


def timed(delays: list[float], seen: list[int], pending: bytes, chunk: bytes) -> bytes:
    arrived = time.time()
    lines = (pending + chunk).split(b"\n")
    for line in lines[:-1]:  # the last: an unfinished line (chunk framing lines skipped)
        if line.startswith(CHANGE):
            seen.append(int(line[len(CHANGE):line.index(b",")]))
            start = line.index(AT) + len(AT)
            delays.append(arrived - at_seconds(line[start:line.index(b'"', start)]))
    return lines[-1]


def main() -> int:
    spec = json.loads(sys.stdin.readline())
    count = spec["count"]
    sockets, firsts = zip(*(opened(spec) for _ in range(count)), strict=True)
    streams: list[list[int]] = [[] for _ in range(count)]
    kept = [[first] for first in firsts]  # the "retry" line, so far
    pending = [b""] * count
    delays: list[float] = []
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    print("READY", flush=True)
    selector = selectors.DefaultSelector()
    for n, sock in enumerate(sockets):
        selector.register(sock, selectors.EVENT_READ, n)
    stop_at = float("inf")
    while time.monotonic() < stop_at:
        if done.is_set() and stop_at == float("inf"):
            stop_at = time.monotonic() + 1.0
        for key, _ in selector.select(0.1):
            n = key.data
            chunk = key.fileobj.recv(262144)  # type: ignore[union-attr]
            if not chunk:
                selector.unregister(key.fileobj)
            elif n % TIMED:
                kept[n].append(chunk)
            else:
                pending[n] = timed(delays, streams[n], pending[n], chunk)
    for sock in sockets:
        sock.close()
    for n, (seen, received) in enumerate(zip(streams, kept, strict=True)):
        if n % TIMED:
            seen.extend(positions(received))
    delays.sort()

    def pct(q: float) -> float:
        return delays[min(len(delays) - 1, int(q * len(delays)))] * 1000 if delays else 0.0

    first = streams[0]
    print(json.dumps({
        "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": pct(1.0),
        "changes_per_stream": len(first), "timed_deliveries": len(delays),
        "exactly_once_in_order": all(s == first for s in streams)
        and first == sorted(set(first))}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
