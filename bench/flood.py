"""Floods: what hostile or broken clients do to ``secrets-ledger serve`` (issue 13, item 4).

    python bench/flood.py [--backend sqlite|postgres] [--seconds S] [--compare-with OTHER_CLI]

Three floods, each against a fresh ``serve`` (SQLite by default: no configuration), each
for ``--seconds`` (default 8), while a normal client does one 100-byte PUT and one
``/healthz`` every 0.25 s on connections of its own:

- ``put-and-leave``: 32 clients at a time open a connection, send a 60 KB PUT with a
  writer token and close it without reading the answer, again and again;
- ``slowloris``: 300 connections each send a request's headers one byte every 2 s, to
  a server whose file limit is 256 (``prlimit``);
- ``idempotent``: 16 clients send 100-operation transactions, each under a new
  ``Idempotency-Key`` (the cache of recent outcomes grows with each).

Reported per flood: the highest ``VmRSS`` sampled every 0.1 s (and 3 s after the flood),
the normal PUTs' worst and median latency and how many were answered 2xx / 503 / not
at all, and how many ``/healthz`` answered 200. Targets: RSS < 300 MB, every normal PUT
answered in < 1 s or shed with 503, ``/healthz`` always 200. ``--compare-with`` runs the
same floods against another installation's ``secrets-ledger`` (an earlier commit).
"""

from __future__ import annotations

import os
import sys

_BENCH = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or os.curdir) == _BENCH:
    sys.path.append(sys.path.pop(0))  # bench/http.py must not hide the standard library's

import json  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
from _common import (  # noqa: E402
    base_parser,
    console,
    fmt,
    print_table,
    run_benchmark,
    verdict,
    workspace,
    write_json,
)
from _servers import ledger_server, new_bootstrap_token, new_master_key  # noqa: E402

RSS_TARGET_MB = 300.0
SLOWLORIS_FILE_LIMIT = 256
PUT_TARGET_S = 1.0


def raw_put(port: int, token: str, path: str, body: bytes) -> None:
    """Sends a whole PUT and closes the connection without reading the answer."""
    head = (f"PUT {path} HTTP/1.1\r\nHost: ledger\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(head.encode() + body)


def put_and_leave(port: int, token: str, stop: threading.Event) -> None:
    body = json.dumps({"value": "x" * 60_000}).encode()
    number = 0
    while not stop.is_set():
        number += 1
        try:
            raw_put(port, token, f"/v1/tenants/flood/secrets/k{number % 50}", body)
        except OSError:
            time.sleep(0.01)


def slowloris(port: int, token: str, stop: threading.Event) -> None:
    request = b"GET /v1/tenants HTTP/1.1\r\nHost: ledger\r\nX-Slow: " + b"a" * 10_000
    try:
        conn = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        return
    with conn:
        for byte in request:
            if stop.wait(2.0):
                return
            try:
                conn.sendall(bytes([byte]))
            except OSError:  # cut off: come back, as an attacker would
                try:
                    conn = socket.create_connection(("127.0.0.1", port), timeout=5)
                except OSError:
                    return


def idempotent(port: int, token: str, stop: threading.Event) -> None:
    operations = [{"op": "set", "key": f"i{n}", "value": "v" * 100} for n in range(100)]
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        while not stop.is_set():
            try:
                client.post("/v1/tenants/flood/transactions", json={"operations": operations},
                            headers={"Idempotency-Key": uuid.uuid4().hex})
            except httpx.HTTPError:
                time.sleep(0.01)


FLOODS: dict[str, tuple[Callable[[int, str, threading.Event], None], int]] = {
    "put-and-leave": (put_and_leave, 32),
    "slowloris": (slowloris, 300),
    "idempotent": (idempotent, 16),
}


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def normal_client(port: int, token: str, stop: threading.Event,
                  found: dict[str, Any]) -> None:
    base = f"http://127.0.0.1:{port}"
    while not stop.is_set():
        began = time.perf_counter()
        try:
            with httpx.Client(base_url=base, timeout=15) as client:
                status = client.put("/v1/tenants/normal/secrets/k", json={"value": "v" * 100},
                                    headers={"Authorization": f"Bearer {token}"}).status_code
        except httpx.HTTPError:
            status = 0
        found["puts"].append((status, time.perf_counter() - began))
        try:
            found["health"].append(httpx.get(f"{base}/healthz", timeout=5).status_code)
        except httpx.HTTPError:
            found["health"].append(0)
        stop.wait(0.25)


def flood_once(cli: str | None, build: str, name: str, seconds: float,
               space: Any) -> dict[str, Any]:
    schema = space.schema(f"flood_{name}_{build}".replace("-", "_"))
    admin = new_bootstrap_token()
    server = ledger_server(space.data_dir / schema, database_url=space.url
                           if space.backend == "postgres" else None, schema=schema,
                           data_dir=space.data_dir / schema / "data", master_key=new_master_key(),
                           bootstrap_token=admin, cli=cli)
    if name == "slowloris":  # as reproduced: a low file limit, which 300 sockets exhaust
        server.argv = ["prlimit", f"--nofile={SLOWLORIS_FILE_LIMIT}", "--", *server.argv]
    server.start("/healthz")
    try:
        with httpx.Client(base_url=server.base_url, timeout=30,
                          headers={"Authorization": f"Bearer {admin}"}) as setup:
            for tenant in ("flood", "normal"):
                setup.post("/v1/tenants", json={"tenant": tenant}).raise_for_status()
            token = setup.post("/v1/tenants/flood/tokens",
                               json={"role": "writer"}).json()["token"]
            normal = setup.post("/v1/tenants/normal/tokens",
                                json={"role": "writer"}).json()["token"]
        rss_before = rss_mb(server.pid)
        stop, found = threading.Event(), {"puts": [], "health": []}
        attack, width = FLOODS[name]
        threads = [threading.Thread(target=attack, args=(server.port, token, stop), daemon=True)
                   for _ in range(width)]
        threads.append(threading.Thread(target=normal_client, daemon=True,
                                        args=(server.port, normal, stop, found)))
        for thread in threads:
            thread.start()
        peak, deadline = rss_before, time.monotonic() + seconds
        while time.monotonic() < deadline:
            peak = max(peak, rss_mb(server.pid))
            time.sleep(0.1)
        stop.set()
        for thread in threads:
            thread.join(20)
        time.sleep(3)
        latencies = [latency for status, latency in found["puts"] if 200 <= status < 300]
        return {
            "rss_before_mb": rss_before, "rss_peak_mb": peak, "rss_after_mb": rss_mb(server.pid),
            "normal_puts": len(found["puts"]), "normal_puts_ok": len(latencies),
            "normal_puts_503": sum(1 for status, _ in found["puts"] if status == 503),
            "normal_puts_unanswered": sum(1 for status, _ in found["puts"] if status == 0),
            "normal_put_max_s": max(latencies, default=float("nan")),
            "normal_put_median_s": statistics.median(latencies) if latencies else float("nan"),
            "healthz": len(found["health"]),
            "healthz_ok": sum(1 for status in found["health"] if status == 200),
        }
    finally:
        server.stop(grace=10)


def meets_targets(run: dict[str, Any]) -> bool:
    ok_or_shed = run["normal_puts_ok"] + run["normal_puts_503"] == run["normal_puts"]
    answered_in_time = run["normal_puts_ok"] == 0 or run["normal_put_max_s"] < PUT_TARGET_S
    return (run["rss_peak_mb"] < RSS_TARGET_MB and ok_or_shed and answered_in_time
            and run["healthz_ok"] == run["healthz"])


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.set_defaults(backend="sqlite")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--compare-with", default=None, help="another build's secrets-ledger")
    parser.add_argument("--floods", default=",".join(FLOODS))
    args = parser.parse_args()
    builds: dict[str, str | None] = {"ledger": None}
    if args.compare_with:
        builds["ledger-before"] = args.compare_with
    results: dict[str, dict[str, Any]] = {}
    with workspace(args.backend) as space:
        for name in args.floods.split(","):
            for build, cli in builds.items():
                console.print(f"{name} against {build} ...")
                results[f"{name}/{build}"] = flood_once(cli, build, name, args.seconds, space)
    rows = [[key, fmt(r["rss_peak_mb"]), fmt(r["rss_after_mb"]),
             f'{r["normal_puts_ok"]}/{r["normal_puts_503"]}/{r["normal_puts_unanswered"]}',
             fmt(r["normal_put_max_s"], 2), f'{r["healthz_ok"]}/{r["healthz"]}',
             "yes" if meets_targets(r) else "no"] for key, r in results.items()]
    print_table(f"floods ({args.backend}, {args.seconds:.0f} s each)",
                ["flood/build", "peak RSS MB", "RSS after MB", "normal PUT ok/503/none",
                 "worst PUT s", "healthz ok", "targets"], rows)
    current = {key: r for key, r in results.items() if key.endswith("/ledger")}
    met = all(meets_targets(r) for r in current.values())
    path = write_json("flood" if args.backend == "postgres" else "flood_sqlite",
                      {"config": {"seconds": args.seconds, "backend": args.backend,
                                  "compare_with": args.compare_with},
                       "runs": results, "targets_met": met}, args.out)
    console.print(f"wrote {path}")
    return verdict(met)


if __name__ == "__main__":
    run_benchmark(main)
