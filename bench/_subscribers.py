"""SSE subscribers for bench/feed.py, run as their own process (not a benchmark itself).

    python bench/_subscribers.py < spec.json

Spec: ``{"host", "port", "path", "token", "count", "after"}``. Opens ``count`` change
streams (raw asyncio sockets: cheap, so that the subscribers measure the server rather
than themselves), prints ``READY`` once every stream has answered, then records, for
every change each stream receives, the delay from the change's ``at`` (the event's
time, taken just before its commit) to its arrival. Stops when stdin closes (the
driver is done writing) and a further second passes; prints one JSON line: delays'
percentiles, changes per stream, and whether every stream saw the same changes, each
once, in order.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import datetime
from typing import Any


async def stream(spec: dict[str, Any], ready: asyncio.Event, opened: list[int],
                 delays: list[float], seen: list[int]) -> None:
    reader, writer = await asyncio.open_connection(spec["host"], spec["port"])
    writer.write((f"GET {spec['path']}?after={spec['after']} HTTP/1.1\r\nHost: bench\r\n"
                  f"Authorization: Bearer {spec['token']}\r\n"
                  "Accept: text/event-stream\r\n\r\n").encode())
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")
    opened[0] += 1
    if opened[0] == spec["count"]:
        ready.set()
    while line := await reader.readline():  # chunked framing lines are skipped below
        if line.startswith(b"data: {\"position\""):
            arrived = time.time()
            change = json.loads(line[6:])
            at = datetime.fromisoformat(change["at"].replace("Z", "+00:00")).timestamp()
            delays.append(arrived - at)
            seen.append(change["position"])


async def main() -> int:
    spec = json.loads(sys.stdin.readline())
    ready = asyncio.Event()
    opened = [0]
    delays: list[float] = []
    streams: list[list[int]] = [[] for _ in range(spec["count"])]
    tasks = [asyncio.ensure_future(stream(spec, ready, opened, delays, seen))
             for seen in streams]
    await asyncio.wait_for(ready.wait(), 120)
    print("READY", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await asyncio.sleep(1.0)
    for task in tasks:
        task.cancel()
    delays.sort()

    def pct(q: float) -> float:
        return delays[min(len(delays) - 1, int(q * len(delays)))] * 1000 if delays else 0.0

    first = streams[0]
    print(json.dumps({
        "p50_ms": pct(0.50), "p99_ms": pct(0.99), "max_ms": pct(1.0),
        "changes_per_stream": len(first), "deliveries": len(delays),
        "exactly_once_in_order": all(s == first for s in streams)
        and first == sorted(set(first))}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
