"""The change feed: time from commit to delivery with 1, 50 and 200 SSE subscribers while
16 writers write, and the writers' throughput with 200 subscribers against none.

    python bench/feed.py [--quick] [--backend postgres|sqlite] [--reps N] [--duration S]

16 keep-alive writers (``_loadgen.py``) PUT a 300-byte value to one tenant for
``--duration`` seconds. Alongside, a separate process (``_subscribers.py``) holds N
streams of ``GET /v1/tenants/T/changes`` (``Accept: text/event-stream``, from
``after=now``) and times each change from its ``at`` (the event's time, taken just before
its commit) to its arrival. Every stream must see the same changes, each once, in order,
and as many as the writes acknowledged.

Two deployments, each on a schema of its own, one after the other:
- ``one process``: one ``secrets-ledger serve`` takes the writes, projects, and serves
  the streams (the embedded default);
- ``split`` (PostgreSQL only): the writers' ``serve --no-projector`` only takes the
  writes; a second ``serve`` over the same database projects and serves the streams
  (README, "Following changes": the deployment for many subscribers).

Targets (issue 17): p99 under 100 ms at 200 subscribers; write throughput with 200
subscribers at least 0.9x without (each ratio within its deployment, from runs
interleaved in it). Everything shares the machine's two cores (servers, PostgreSQL,
writers, subscribers): the ratio includes the subscribers' own CPU.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import httpx
from _common import (
    PAYLOAD,
    base_parser,
    console,
    fmt,
    fmt_ratio,
    median,
    print_table,
    ratio,
    run_benchmark,
    verdict,
    workspace,
    write_json,
)
from _servers import (
    HERE,
    ledger_server,
    new_bootstrap_token,
    new_master_key,
    process_cpu_s,
    run_loadgen,
    wait_views,
)

NAME = "feed"
TENANT = "bench"
SUBSCRIBERS = (0, 1, 50, 200)
P99_GOAL_MS = 100.0
THROUGHPUT_GOAL = 0.9
LABELS = {"one": "one process", "split": "split"}


def one_run(server: Any, token: str, subscribers: int, duration: float,
            follower: Any) -> dict[str, Any]:
    """``server`` takes the writes; the subscribers follow ``follower`` (the same one, or
    the split deployment's second)."""
    path = f"/v1/tenants/{TENANT}/changes"
    wait_views(server)  # the last run's writes are all projected before "now" is taken
    with httpx.Client(base_url=follower.base_url, timeout=60.0,
                      headers={"Authorization": f"Bearer {token}"}) as client:
        cursor = client.get(path, params={"after": "now"}).raise_for_status().json()["cursor"]
    watchers = None
    if subscribers:
        watchers = subprocess.Popen([sys.executable, str(HERE / "_subscribers.py")],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert watchers.stdin is not None and watchers.stdout is not None
        watchers.stdin.write(json.dumps({"host": "127.0.0.1", "port": follower.port,
                                         "path": path, "token": token, "count": subscribers,
                                         "after": cursor}) + "\n")
        watchers.stdin.flush()
        assert watchers.stdout.readline().strip() == "READY"
    body = json.dumps({"value": PAYLOAD})
    feed_cpu = process_cpu_s(follower.process.pid)
    writes = run_loadgen({"host": "127.0.0.1", "port": server.port, "method": "PUT",
                          "path": f"/v1/tenants/{TENANT}/secrets/feed/key",
                          "headers": {"Authorization": f"Bearer {token}",
                                      "Content-Type": "application/json"},
                          "body": body, "concurrency": 16, "duration": duration,
                          "warmup": 0.0}, server)
    acknowledged = int(writes["acknowledged"])
    result: dict[str, Any] = {"subscribers": subscribers, "writes_per_s": writes["ops_per_s"],
                              "acknowledged": acknowledged,
                              **{name: writes.get(name) for name in (
                                  "server_cpu_pct", "postgres_cpu_pct", "machine_busy_pct")}}
    if follower is not server:  # the split's second server: CPU seconds while writing
        result["feed_server_cpu_s"] = process_cpu_s(follower.process.pid) - feed_cpu
    if watchers is not None:
        assert watchers.stdin is not None and watchers.stdout is not None
        result["subscribers_cpu_s"] = process_cpu_s(watchers.pid)

        watchers.stdin.close()
        delivered = json.loads(watchers.stdout.readline())
        watchers.wait(30)
        result.update(delivered)
        # The streams began after "now": every acknowledged write, and nothing else.
        result["complete"] = bool(delivered["exactly_once_in_order"]) and (
            delivered["changes_per_stream"] == acknowledged)
    return result


def summarised(subscribers: int, results: list[dict[str, Any]]) -> dict[str, Any]:
    row: dict[str, Any] = {"writes_per_s": median([r["writes_per_s"] for r in results])}
    if subscribers:
        row.update(p50_ms=median([r["p50_ms"] for r in results]),
                   p99_ms=median([r["p99_ms"] for r in results]),
                   complete=all(r["complete"] for r in results))
    return row


def row_of(label: str, row: dict[str, Any]) -> list[str]:
    timed = "p99_ms" in row
    return [label, fmt(row["writes_per_s"]), fmt(row["p50_ms"], 1) if timed else "-",
            fmt(row["p99_ms"], 1) if timed else "-", str(row.get("complete", "-"))]


def servers_of(space: Any, deployment: str, bootstrap: str, key: str) -> list[Any]:
    """The servers of a deployment: the writers' first, the subscribers' last."""
    schema = space.schema(f"feed_{deployment}") if space.backend == "postgres" else None
    names = ("writes", "feed") if deployment == "split" else ("one",)
    servers = [ledger_server(space.data_dir / name, database_url=space.url if schema else None,
                             schema=schema, data_dir=space.data_dir / f"ledger-{name}",
                             master_key=key, bootstrap_token=bootstrap, name=name)
               for name in names]
    if deployment == "split":
        servers[0].argv.append("--no-projector")  # the second projects, and fans out
        servers[1].env["LEDGER_PROJECTION_POLL_INTERVAL"] = "0.025"
    return servers


def measured(space: Any, deployment: str, reps: int, duration: float,
             counts: tuple[int, ...] = SUBSCRIBERS) -> dict[int, list[dict[str, Any]]]:
    runs: dict[int, list[dict[str, Any]]] = {n: [] for n in counts}
    bootstrap, key = new_bootstrap_token(), new_master_key()
    servers = servers_of(space, deployment, bootstrap, key)
    for server in servers:
        server.start("/healthz")
    try:
        with httpx.Client(base_url=servers[0].base_url, timeout=60.0,
                          headers={"Authorization": f"Bearer {bootstrap}"}) as client:
            client.post("/v1/tenants", json={"tenant": TENANT}).raise_for_status()
        for rep in range(reps):
            for subscribers in counts:
                run = one_run(servers[0], bootstrap, subscribers, duration, servers[-1])
                runs[subscribers].append(run)
                console.print(f"{deployment}, rep {rep + 1}: {subscribers} subscribers: {run}")
    finally:
        for server in servers:
            server.stop()
    return runs


def main() -> int:
    parser = base_parser(__doc__ or "")
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--deployments", default=None,
                        help="comma-separated: one, split (default: both on PostgreSQL)")
    parser.add_argument("--subscribers", default=",".join(map(str, SUBSCRIBERS)),
                        help="comma-separated subscriber counts, 0 and 200 among them"
                             " (default: %(default)s)")
    args = parser.parse_args()
    counts = tuple(int(n) for n in args.subscribers.split(","))
    if not {0, 200} <= set(counts):
        parser.error("--subscribers must include 0 and 200 (the ratio's two ends)")
    duration = 3.0 if args.quick else args.duration
    reps = 1 if args.quick else args.reps
    deployments = tuple(args.deployments.split(",")) if args.deployments else (
        ("one", "split") if args.backend == "postgres" else ("one",))
    runs, summaries, kept = {}, {}, {}
    ok = True
    rows = []
    with workspace(args.backend) as space:
        for deployment in deployments:
            runs[deployment] = measured(space, deployment, reps, duration, counts)
    for deployment in deployments:
        summary = summaries[deployment] = {n: summarised(n, results)
                                           for n, results in runs[deployment].items()}
        kept[deployment] = ratio(summary[200]["writes_per_s"], summary[0]["writes_per_s"])
        ok = ok and all(row.get("complete", True) for row in summary.values())
        rows += [row_of(f"{n}, {LABELS[deployment]}", summary[n]) for n in counts]
    print_table(f"Change feed ({args.backend}, 16 writers, {duration:g} s x {reps})",
                ["subscribers", "writes/s", "p50 ms", "p99 ms", "every change once"], rows)
    for deployment in deployments:
        met = (summaries[deployment][200]["p99_ms"] < P99_GOAL_MS
               and kept[deployment] >= THROUGHPUT_GOAL)
        console.print(f"{LABELS[deployment]}: writes/s with 200 subscribers / without: "
                      f"{fmt_ratio(kept[deployment])} (goal >= {THROUGHPUT_GOAL}); p99 at 200:"
                      f" {fmt(summaries[deployment][200]['p99_ms'], 1)} ms (goal < "
                      f"{P99_GOAL_MS:g}): {'met' if met else 'not met'}")
    write_json(NAME, {"backend": args.backend, "duration": duration, "reps": reps,
                      "runs": runs, "summary": summaries, "throughput_ratio": kept}, args.out)
    return verdict(ok)


if __name__ == "__main__":
    run_benchmark(main)
