"""HTTP load generator for the benchmarks, run as its own process (not a benchmark itself).

    python bench/_loadgen.py < spec.json

Reads one JSON spec on stdin::

    {"host": "127.0.0.1", "port": 8200, "method": "GET", "path": "/v1/...",
     "headers": {"Authorization": "Bearer ..."}, "body": "...",
     "concurrency": 16, "duration": 5.0, "warmup": 1.0, "client": "raw"}

``concurrency`` keep-alive connections, each with one request in flight at a time
(no pipelining). After ``warmup`` seconds (unmeasured), every connection starts the
measured window together; at ``duration`` seconds they stop issuing requests and
finish the one in flight, so that the server never processes a request whose answer
nobody counted. With ``"paths": [...]`` instead of ``path``, every path is requested
exactly once (shared among the connections, no warmup, no duration): a pass over a
list of resources.

Prints ``START`` when the measured window begins, ``END`` when the last measured
request has been answered, then one JSON line: acknowledged (2xx) requests, statuses,
errors, the window's length, latency percentiles (nearest rank), the process's CPU
seconds during the window and the last response body seen of each status.

``sigv4``: ``{"access_key_id", "secret_access_key", "region", "service"}`` signs every
request at the moment it is sent (the raw client only), as an AWS SDK does.

``client``: ``raw`` (default) is a minimal HTTP/1.1 client on asyncio streams (uvloop
when installed), cheap enough that two cores are not shared half and half between
the load and the server; ``httpx`` is ``httpx.AsyncClient`` (several times the CPU per
request: on a small machine it measures itself as much as the server).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import math
import sys
import time
import uuid
from typing import Any

REQUEST_TIMEOUT = 60.0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q / 100 * len(ordered))) - 1]


class Stats:
    def __init__(self) -> None:
        self.ok = 0
        self.statuses: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.latencies: list[float] = []
        self.last_end = 0.0
        self.bodies: dict[str, str] = {}
        self.body_bytes: dict[str, int] = {}

    def record(self, status: int, body: bytes, began: float, ended: float) -> None:
        key = str(status)
        self.statuses[key] = self.statuses.get(key, 0) + 1
        if 200 <= status < 300:
            self.ok += 1
            self.latencies.append(ended - began)
        self.last_end = max(self.last_end, ended)
        self.bodies[key] = body[:2000].decode("utf-8", "replace")
        self.body_bytes[key] = len(body)

    def error(self, error: BaseException, ended: float) -> None:
        name = type(error).__name__
        self.errors[name] = self.errors.get(name, 0) + 1
        self.last_end = max(self.last_end, ended)

    def summary(self, started: float) -> dict[str, Any]:
        elapsed = self.last_end - started if self.last_end > started else math.nan
        lat = self.latencies
        return {
            "acknowledged": self.ok,
            "requests": sum(self.statuses.values()) + sum(self.errors.values()),
            "statuses": self.statuses,
            "errors": self.errors,
            "elapsed_s": elapsed,
            "ops_per_s": self.ok / elapsed if elapsed and not math.isnan(elapsed) else math.nan,
            "p50_ms": percentile(lat, 50) * 1000,
            "p90_ms": percentile(lat, 90) * 1000,
            "p99_ms": percentile(lat, 99) * 1000,
            "max_ms": (max(lat) if lat else math.nan) * 1000,
            "mean_ms": (sum(lat) / len(lat) if lat else math.nan) * 1000,
        }


# ---- clients ----------------------------------------------------------------------------


class RawConnection:
    """One keep-alive HTTP/1.1 connection: Content-Length or chunked responses."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(self, payload: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self._connect()
        assert self.reader is not None and self.writer is not None
        reader = self.reader
        self.writer.write(payload)
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = None
        chunked = close = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        if chunked:
            parts = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":
                        pass
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            body = b"".join(parts)
        elif length is not None:
            body = await reader.readexactly(length)
        else:  # no length: the body runs to the end of the connection
            body = await reader.read()
            close = True
        if close:
            self.close()
        return status, body


def raw_request(method: str, host: str, port: int | str, path: str, headers: dict[str, str],
                body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if body or method in ("PUT", "POST"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class SigV4Signer:
    """Signs each request as botocore does (AWS4-HMAC-SHA256 over host, the date, the
    target and the body), with the time of sending; ``{uuid}`` in the body becomes a new
    UUID each time (a PutSecretValue's fresh ClientRequestToken)."""

    def __init__(self, spec: dict[str, Any], host: str, port: int) -> None:
        sig = spec["sigv4"]
        self.key_id, self.secret = sig["access_key_id"], sig["secret_access_key"]
        self.region, self.service = sig["region"], sig["service"]
        self.method, self.path = spec["method"], spec["path"]
        self.host = f"{host}:{port}"
        self.target = spec["headers"]["X-Amz-Target"]
        self.template = str(spec.get("body") or "")
        self._keys: dict[str, bytes] = {}

    def _key(self, day: str) -> bytes:
        key = self._keys.get(day)
        if key is None:
            key = hmac.new(f"AWS4{self.secret}".encode(), day.encode(), hashlib.sha256).digest()
            for part in (self.region, self.service, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            self._keys[day] = key
        return key

    def payload(self) -> bytes:
        body = self.template.replace("{uuid}", str(uuid.uuid4())).encode()
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        day = amz_date[:8]
        signed = "content-type;host;x-amz-date;x-amz-target"
        canonical = (f"{self.method}\n{self.path}\n\ncontent-type:application/x-amz-json-1.1\n"
                     f"host:{self.host}\nx-amz-date:{amz_date}\nx-amz-target:{self.target}\n"
                     f"\n{signed}\n{hashlib.sha256(body).hexdigest()}")
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        to_sign = (f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n"
                   f"{hashlib.sha256(canonical.encode()).hexdigest()}")
        signature = hmac.new(self._key(day), to_sign.encode(), hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Date": amz_date,
                   "X-Amz-Target": self.target,
                   "Authorization": f"AWS4-HMAC-SHA256 Credential={self.key_id}/{scope},"
                                    f" SignedHeaders={signed}, Signature={signature}"}
        return raw_request(self.method, *self.host.split(":"), self.path, headers, body)


class RawClient:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.host, self.port = spec["host"], int(spec["port"])
        self.headers = dict(spec.get("headers") or {})
        self.body = str(spec.get("body") or "").encode()
        self._cache: dict[str, bytes] = {}
        self.signer = SigV4Signer(spec, self.host, self.port) if "sigv4" in spec else None

    def connection(self) -> RawConnection:
        return RawConnection(self.host, self.port)

    async def send(self, conn: RawConnection, path: str) -> tuple[int, bytes]:
        payload = None if self.signer is None else self.signer.payload()
        if payload is None:
            payload = self._cache.get(path)
        if payload is None:
            payload = raw_request(self.spec["method"], self.host, self.port, path,
                                  self.headers, self.body)
            if len(self._cache) < 16:
                self._cache[path] = payload
        try:
            return await asyncio.wait_for(conn.request(payload), REQUEST_TIMEOUT)
        except BaseException:
            conn.close()
            raise

    async def aclose(self) -> None:
        pass


class HttpxClient:
    def __init__(self, spec: dict[str, Any]) -> None:
        import httpx

        n = int(spec["concurrency"])
        self.spec = spec
        self.client = httpx.AsyncClient(
            base_url=f"http://{spec['host']}:{spec['port']}",
            limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
            timeout=REQUEST_TIMEOUT,
        )
        self.headers = dict(spec.get("headers") or {})
        self.body = str(spec.get("body") or "").encode()

    def connection(self) -> None:
        return None  # the pool holds the connections

    async def send(self, conn: None, path: str) -> tuple[int, bytes]:
        response = await self.client.request(self.spec["method"], path, headers=self.headers,
                                             content=self.body or None)
        return response.status_code, response.content

    async def aclose(self) -> None:
        await self.client.aclose()


# ---- the run ----------------------------------------------------------------------------


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    client: Any = HttpxClient(spec) if spec.get("client") == "httpx" else RawClient(spec)
    concurrency = int(spec.get("concurrency", 16))
    clock = time.perf_counter
    warm, measured = Stats(), Stats()
    paths: list[str] | None = spec.get("paths")
    conns = [client.connection() for _ in range(concurrency)]
    cpu = [0.0, 0.0]

    if paths is not None:  # one pass over a list of paths
        queue = iter(paths)
        started = clock()
        cpu[0] = time.process_time()
        print("START", flush=True)

        async def one_pass(conn: Any) -> None:
            for path in queue:  # shared iterator: each path is requested once
                began = clock()
                try:
                    status, body = await client.send(conn, path)
                except Exception as error:
                    measured.error(error, clock())
                else:
                    measured.record(status, body, began, clock())

        await asyncio.gather(*(one_pass(conn) for conn in conns))
    else:
        warmup, duration = float(spec.get("warmup", 0.0)), float(spec["duration"])
        path = spec["path"]
        t0 = clock()
        window_start = t0 + warmup
        window_end = window_start + duration
        started = window_start
        announced = asyncio.Event()

        async def announce() -> None:
            await asyncio.sleep(max(0.0, window_start - clock()))
            cpu[0] = time.process_time()
            print("START", flush=True)
            announced.set()

        async def loop(conn: Any) -> None:
            while True:
                began = clock()
                if began >= window_end:
                    return
                stats = measured if began >= window_start else warm
                try:
                    status, body = await client.send(conn, path)
                except Exception as error:
                    stats.error(error, clock())
                    if sum(stats.errors.values()) > 1000:
                        return
                else:
                    stats.record(status, body, began, clock())

        await asyncio.gather(announce(), *(loop(conn) for conn in conns))
    cpu[1] = time.process_time()
    print("END", flush=True)
    for conn in conns:
        if conn is not None:
            conn.close()
    await client.aclose()
    out = measured.summary(started)
    out["cpu_s"] = cpu[1] - cpu[0]
    out["bodies"] = measured.bodies or warm.bodies
    out["body_bytes"] = measured.body_bytes or warm.body_bytes
    out["warmup"] = {"acknowledged": warm.ok, "statuses": warm.statuses, "errors": warm.errors}
    out["acknowledged_total"] = warm.ok + measured.ok
    out["client"] = spec.get("client", "raw")
    return out


def main() -> int:
    spec = json.loads(sys.stdin.read())
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:  # pragma: no cover
        runner = asyncio.Runner()
    with runner:
        result = runner.run(run(spec))

    def clean(value: Any) -> Any:
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value

    print(json.dumps(clean(result)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
