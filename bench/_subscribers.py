"""SSE subscribers for bench/feed.py, run as their own process (not a benchmark itself).

    python bench/_subscribers.py < spec.json

Spec: ``{"host", "port", "path", "token", "count", "after"}``. Opens ``count`` change
streams (raw asyncio sockets) and prints ``READY`` once every stream has answered.
Every ``TIMED``-th stream then records, for each change it receives, the delay from the
change's ``at`` (the event's time, taken just before its commit) to the arrival of the
bytes that carried it; the others only keep what they receive, parsed once the run is
over: the subscribers share the machine with the server, and should measure it rather
than themselves. Stops when stdin closes (the driver is done writing) and a further
second passes; prints one JSON line: delays' percentiles, changes per stream, and
whether every stream saw the same changes, each once, in order.
"""

from __future__ import annotations

import asyncio
import json
import sys
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


async def stream(spec: dict[str, Any], ready: asyncio.Event, opened: list[int],
                 delays: list[float] | None, seen: list[int], kept: list[bytes]) -> None:
    reader, writer = await asyncio.open_connection(spec["host"], spec["port"])
    writer.write((f"GET {spec['path']}?after={spec['after']} HTTP/1.1\r\nHost: bench\r\n"
                  f"Authorization: Bearer {spec['token']}\r\n"
                  "Accept: text/event-stream\r\n\r\n").encode())
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    opened[0] += 1
    if opened[0] == spec["count"]:
        ready.set()
    if delays is None:  # kept as received, parsed at the end
        while chunk := await reader.read(262144):
            kept.append(chunk)
        return
    pending = b""
    while chunk := await reader.read(262144):
        arrived = time.time()
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()  # an unfinished line (chunked framing lines are skipped)
        for line in lines:
            if line.startswith(CHANGE):
                seen.append(int(line[len(CHANGE):line.index(b",")]))
                start = line.index(AT) + len(AT)
                delays.append(arrived - at_seconds(line[start:line.index(b'"', start)]))


async def main() -> int:
    spec = json.loads(sys.stdin.readline())
    ready = asyncio.Event()
    opened = [0]
    delays: list[float] = []
    streams: list[list[int]] = [[] for _ in range(spec["count"])]
    kept: list[list[bytes]] = [[] for _ in range(spec["count"])]
    tasks = [asyncio.ensure_future(stream(spec, ready, opened,
                                          delays if n % TIMED == 0 else None, seen, kept[n]))
             for n, seen in enumerate(streams)]
    await asyncio.wait_for(ready.wait(), 120)
    print("READY", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await asyncio.sleep(1.0)
    for task in tasks:
        task.cancel()
    for seen, received in zip(streams, kept, strict=True):
        if received:
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
    sys.exit(asyncio.run(main()))
