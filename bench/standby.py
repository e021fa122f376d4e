"""What a synchronous standby costs the ledger's writes: HTTP write throughput and latency
of ``secrets-ledger serve`` on a pg_auto_failover pair, with and without the standby.

    python bench/standby.py [--quick] [--reps N] [--duration S] [--base-port P] [--out PATH]

Starts a monitor and two PostgreSQL 15 nodes on loopback (``_pgaf.py``; ports P..P+2,
default 57440), then one ``serve`` on the pair's multi-host URL. 16 keep-alive connections
each PUT a 300-byte value to a key of their own in a tenant of their own (16 tenants, one
writer token each) for ``--duration`` seconds (default 10, after 1 s of warmup), in three
configurations of the same pair and the same server process:

- ``sync``: the pair as pg_auto_failover sets it up: a commit waits for the secondary to
  flush its WAL (``synchronous_standby_names`` = ``ANY 1 (...)``);
- ``async``: the secondary set to ``replication-quorum false``: it still streams the WAL,
  commits no longer wait for it (``synchronous_standby_names`` empty);
- ``alone``: the secondary killed (its pg_autoctl and PostgreSQL), the primary in
  ``wait_primary``: one copy.

The three alternate in each repetition (3; ``--quick``: 1 of 3 s); after ``alone`` the
secondary is restarted and rejoins before the next. Reported: the medians of writes/s,
p50 and p99, and ratios against ``async``: interleaved with ``sync`` on the same pair,
its commits wait for the primary's disk only, as ``alone``'s do, while the standby
still replays (CPU).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, LiteralString

import httpx
import psycopg
import uvloop
from _common import (
    PAYLOAD,
    console,
    fmt,
    fmt_ratio,
    median,
    percentile,
    print_table,
    ratio,
    run_benchmark,
    verdict,
    write_json,
)
from _pgaf import AutoFailoverPair, Node, _ours, ensure_installed
from _servers import (
    CpuSample,
    Server,
    cpu_between,
    ledger_server,
    new_bootstrap_token,
    new_master_key,
)

NAME = "standby"
WRITERS = 16
CONFIGS = ("sync", "async", "alone")
BASELINE = "async"


def show(pair: AutoFailoverPair, node: Node, query: LiteralString) -> str:
    """The one value a query returns on a node (connected to directly, not by the URL)."""
    dsn = f"host=127.0.0.1 port={node.port} dbname={pair.dbname} user=postgres"
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(query).fetchone()
    return "" if row is None or row[0] is None else str(row[0])


def configure(pair: AutoFailoverPair, primary: Node, secondary: Node, config: str) -> None:
    """Puts the pair in ``config`` and waits until the primary runs with it."""
    def names() -> str:
        return show(pair, primary, "SHOW synchronous_standby_names")

    ready: Callable[[], bool]
    if config == "alone":
        pair.kill_node(secondary)
        want = ("wait_primary", "wait_primary")
        ready = lambda: pair.states().get(primary.name) == want and not names()  # noqa: E731
    else:
        sync = config == "sync"
        if bool(names()) != sync:  # pg_autoctl asks the monitor, which tells the primary
            pair.set_node(secondary, "replication-quorum", "true" if sync else "false")
        ready = lambda: bool(names()) == sync and sorted(  # noqa: E731
            pair.states().values()) == [("primary", "primary"), ("secondary", "secondary")]
    pair._wait(ready, 60.0, f"the pair {config}")
    replicas = show(pair, primary, "SELECT string_agg(application_name || ' ' || sync_state,"
                                   " ', ') FROM pg_stat_replication")
    state = pair.states().get(primary.name, ("?", "?"))[0]
    console.print(f"{config}: primary {primary.name} {state},"
                  f" synchronous_standby_names = '{names()}', replication: {replicas or 'none'}",
                  markup=False)


async def put(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes) -> int:
    """One request on a keep-alive connection: its status (answers have a Content-Length)."""
    conn[1].write(request)
    head = (await conn[0].readuntil(b"\r\n\r\n")).lower()
    length = next((int(line[15:]) for line in head.split(b"\r\n")
                   if line.startswith(b"content-length:")), 0)
    await conn[0].readexactly(length)
    return int(head.split(b" ", 2)[1])


async def writes(port: int, pid: int, requests: list[bytes], duration: float,
                 warmup: float) -> dict[str, Any]:
    """One connection per request, each sent again as soon as answered, as _loadgen.py
    does (its spec has one path and one token for all connections)."""
    clock, latencies, samples = time.perf_counter, list[float](), list[CpuSample]()
    statuses, errors = Counter[str](), Counter[str]()
    start = clock() + warmup
    end = last = start + duration

    async def writer(request: bytes) -> None:
        nonlocal last
        conn = None
        while (began := clock()) < end:
            try:
                conn = conn or await asyncio.open_connection("127.0.0.1", port)
                status = await asyncio.wait_for(put(conn, request), 60.0)
            except Exception as error:  # counted; the next request reconnects
                if conn is not None:
                    conn[1].close()
                conn = None
                errors[type(error).__name__] += 1
                await asyncio.sleep(0.01)
                continue
            if began >= start:  # answered after the warmup: measured
                statuses[str(status)] += 1
                if 200 <= status < 300:
                    latencies.append(clock() - began)
                last = max(last, clock())
        if conn is not None:
            conn[1].close()

    async def window() -> None:  # CPU of the measured window only (a /proc read: no I/O)
        await asyncio.sleep(warmup)
        samples.append(CpuSample.take(pid))

    await asyncio.gather(window(), *(writer(request) for request in requests))
    samples.append(CpuSample.take(pid))
    return {"acknowledged": len(latencies), "ops_per_s": len(latencies) / (last - start),
            "p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99)
            * 1000, "statuses": dict(statuses), "errors": dict(+errors),
            **cpu_between(*samples)}


def measure(server: Server, requests: list[bytes], duration: float) -> dict[str, Any]:
    # uvloop (uvicorn[standard] brings it), as _loadgen.py: the load shares two cores
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(writes(server.port, server.pid, requests, duration, warmup=1.0))


def writer_requests(server: Server, bootstrap: str) -> list[bytes]:
    """16 tenants, a writer token each; one ready-made PUT per connection."""
    body = json.dumps({"value": PAYLOAD}).encode()
    requests = []
    with httpx.Client(base_url=server.base_url, timeout=60.0,
                      headers={"Authorization": f"Bearer {bootstrap}"}) as admin:
        for n in range(WRITERS):
            tenant = f"standby{n:02d}"
            admin.post("/v1/tenants", json={"tenant": tenant}).raise_for_status()
            token = admin.post(f"/v1/tenants/{tenant}/tokens", json={"role": "writer"}
                               ).raise_for_status().json()["token"]
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
            requests.append(f"PUT /v1/tenants/{tenant}/secrets/w{n} HTTP/1.1\r\nHost: ledger\r\n"
                            f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
    return requests


def measured(args: argparse.Namespace, reps: int, duration: float
             ) -> tuple[dict[str, list[dict[str, Any]]], list[int]]:
    runs: dict[str, list[dict[str, Any]]] = {config: [] for config in CONFIGS}
    bootstrap = new_bootstrap_token()
    port = args.base_port
    with tempfile.TemporaryDirectory(prefix="ledger-standby-") as scratch, \
            AutoFailoverPair(port, (port + 1, port + 2)) as pair:
        primary = pair.primary()
        assert primary is not None, "no primary"
        secondary = next(node for node in pair.nodes if node is not primary)
        console.print(f"pair up; synchronous_commit ="
                      f" {show(pair, primary, 'SHOW synchronous_commit')}")
        server = ledger_server(Path(scratch), database_url=pair.url, schema=None,
                               data_dir=Path(scratch) / "data", master_key=new_master_key(),
                               bootstrap_token=bootstrap, name="standby")
        server.env["LEDGER_STORE_RETRY_TIMEOUT"] = "60"  # rides out the secondary's death
        server.start("/healthz")
        try:
            requests = writer_requests(server, bootstrap)
            order = list(CONFIGS) * reps  # interleaved: the machine drifts over minutes
            for n, config in enumerate(order):
                if n > 0 and order[n - 1] == "alone":  # the secondary rejoins (2-4 s)
                    pair.restart_node(secondary)
                    pair.wait_for_secondary(secondary)
                if n == 0 or order[n - 1] != config:
                    configure(pair, primary, secondary, config)
                run = measure(server, requests, duration)
                runs[config].append(run)
                console.print(f"{config}: {fmt(run['ops_per_s'])} writes/s, p50"
                              f" {fmt(run['p50_ms'], 1)} ms, p99 {fmt(run['p99_ms'], 1)} ms,"
                              f" statuses {run['statuses']}, errors {run['errors']}",
                              markup=False)
        finally:
            server.stop()
    return runs, _ours(f"{pair.root}/")  # what close() left working in the temp dir


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 repetition of 3 s")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each figure")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--base-port", type=int, default=57440,
                        help="the monitor's port; the nodes take the next two")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default results/)")
    args = parser.parse_args()
    duration = 3.0 if args.quick else args.duration
    reps = 1 if args.quick else args.reps
    console.print(f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}; load average"
                  f" {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    ensure_installed()
    runs, left = measured(args, reps, duration)
    summary = {config: {name: median([run[name] for run in runs[config]]) for name in (
        "ops_per_s", "p50_ms", "p99_ms", "server_cpu_pct", "machine_busy_pct")}
        for config in CONFIGS}
    base = summary[BASELINE]
    for row in summary.values():
        row["writes_ratio"] = ratio(row["ops_per_s"], base["ops_per_s"])
        row["p99_ratio"] = ratio(row["p99_ms"], base["p99_ms"])
    print_table(f"Writes on a pg_auto_failover pair ({WRITERS} writers, 16 tenants,"
                f" {duration:g} s x {reps}; ratios against {BASELINE})",
                ["configuration", "writes/s", f"x {BASELINE}", "p50 ms", "p99 ms",
                 f"p99 x {BASELINE}", "server CPU %", "machine busy %"],
                [[config, fmt(row["ops_per_s"]), fmt_ratio(row["writes_ratio"]),
                  fmt(row["p50_ms"], 1), fmt(row["p99_ms"], 1), fmt_ratio(row["p99_ratio"]),
                  fmt(row["server_cpu_pct"]), fmt(row["machine_busy_pct"])]
                 for config, row in summary.items()])
    sync, alone = summary["sync"], summary["alone"]
    console.print(f"the synchronous standby: {fmt_ratio(sync['writes_ratio'])}x the writes/s"
                  f" and {fmt_ratio(sync['p99_ratio'])}x the p99 of {BASELINE};"
                  f" against alone {fmt_ratio(ratio(sync['ops_per_s'], alone['ops_per_s']))}x"
                  f" and {fmt_ratio(ratio(sync['p99_ms'], alone['p99_ms']))}x")
    failed = [run for config in CONFIGS for run in runs[config]
              if run["errors"] or set(run["statuses"]) - {"200", "201"}]
    console.print(f"runs with errors or non-2xx answers: {len(failed)}; processes left: {left}")
    write_json(NAME, {"writers": WRITERS, "duration": duration, "reps": reps,
                      "baseline": BASELINE, "runs": runs, "summary": summary}, args.out)
    return verdict(not failed and not left)


if __name__ == "__main__":
    run_benchmark(main)
