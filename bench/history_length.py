"""Figure 4: put_secret latency on a tenant with 100 events of history vs 100,000.

    /tmp/venv/bin/python bench/history_length.py [--quick] [--backend sqlite]

Two tenants are filled fast with the same kind of history (one-key write events
cycling over a few keys, thousands per transaction, see
``_common.create_filled_tenants``): "short" with 100 events, "long" with 100,000
(--quick 10,000). The projector catches up before anything is timed. Then, per
repetition and per tenant (alternating which goes first):

- cold: the first put_secret of a freshly started runtime (nothing cached: the
  aggregate is loaded from the store, snapshot + newer events);
- warm: after a few unmeasured writes, ``--writes`` sequential put_secret calls of a
  300-byte value, one writer, each timed; p50/p99/max.

The short tenant is the baseline: the figure is the ratio long/short. Correctness:
every acknowledged version is the one after the previous on its key, the sum of the
keys' current versions grew by exactly the acknowledged writes, and both hash chains
verify.
"""

from __future__ import annotations

import time
from typing import Any

from _common import (
    PAYLOAD,
    BlockingLedger,
    base_parser,
    console,
    create_filled_tenants,
    fmt,
    fmt_ratio,
    median,
    open_runtime,
    percentile,
    pg_version,
    print_table,
    ratio,
    run_benchmark,
    verdict,
    wait_for_views,
    workspace,
    write_json,
)

NAME = "history_length"
WARMUP = 5


def current_versions(ledger: Any, tenant: str, keys: list[str]) -> dict[str, int]:
    from secrets_ledger.domain.errors import SecretNotFound

    out = {}
    for key in keys:
        try:
            out[key] = ledger.list_versions(tenant, key)[0]
        except SecretNotFound:
            out[key] = 0
    return out


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--long", type=int, default=None,
                        help="events of the long history (default 100,000; --quick 10,000)")
    parser.add_argument("--short", type=int, default=100, help="events of the short history")
    parser.add_argument("--keys", type=int, default=10, help="keys each history cycles over")
    parser.add_argument("--writes", type=int, default=None,
                        help="timed writes per tenant per repetition (default 400; --quick 150)")
    args = parser.parse_args()
    long_events = args.long or (10_000 if args.quick else 100_000)
    writes = args.writes or (150 if args.quick else 400)
    histories = {"short": args.short, "long": long_events}
    tenants = {"short": "history-short", "long": "history-long"}
    keys = [f"app/key-{k:04d}" for k in range(args.keys)]

    from secrets_ledger.domain.changes import RequestContext

    ctx = RequestContext(actor="bench", request_id="bench-history")
    warm: dict[str, list[dict[str, Any]]] = {"short": [], "long": []}
    cold: dict[str, list[float]] = {"short": [], "long": []}
    acks: dict[str, list[tuple[str, int]]] = {"short": [], "long": []}
    info: dict[str, Any] = {}
    with workspace(args.backend) as space:
        console.print(f"[bold]{NAME}[/bold]: backend={args.backend} short={args.short:,} "
                      f"long={long_events:,} keys={args.keys} writes={writes} reps={args.reps}"
                      + (f" postgres={pg_version(space.url)}" if args.backend == "postgres"
                         else ""))
        schema = space.schema("hl")
        rt = open_runtime(space, schema)
        try:
            for which in ("short", "long"):
                started = time.perf_counter()
                create_filled_tenants(rt, [tenants[which]], histories[which], args.keys,
                                      events_per_transaction=2000)
                info[f"fill_{which}_s"] = time.perf_counter() - started
            info["catch_up_s"] = wait_for_views(rt)
            console.print(f"filled: long in {info['fill_long_s']:.1f} s, views caught up "
                          f"{info['catch_up_s']:.1f} s later")
            writer = BlockingLedger(rt.ledger)
            before = {w: current_versions(writer, tenants[w], keys) for w in tenants}
            info["events_before"] = {w: sum(before[w].values()) + 1 for w in tenants}

            # Cold: a fresh runtime on the same store, nothing cached. Done before the
            # main runtime writes, so that its own cache never goes stale.
            for rep in range(args.reps):
                for which in (("short", "long") if rep % 2 == 0 else ("long", "short")):
                    fresh = open_runtime(space, schema, follow=False)
                    try:
                        started = time.perf_counter()
                        key = keys[rep % len(keys)]
                        result = BlockingLedger(fresh.ledger).put_secret(
                            tenants[which], key, PAYLOAD, None, None, ctx)
                        cold[which].append(time.perf_counter() - started)
                        acks[which].append((key, result.version))
                    finally:
                        fresh.close()
            wait_for_views(rt)

            for rep in range(args.reps):
                for which in (("short", "long") if rep % 2 == 0 else ("long", "short")):
                    tenant = tenants[which]
                    for n in range(WARMUP):
                        key = keys[n % len(keys)]
                        acks[which].append(
                            (key, writer.put_secret(tenant, key, PAYLOAD, None, None,
                                                    ctx).version))
                    wait_for_views(rt)
                    latencies = []
                    for n in range(writes):
                        key = keys[n % len(keys)]
                        started = time.perf_counter()
                        result = writer.put_secret(tenant, key, PAYLOAD, None, None, ctx)
                        latencies.append(time.perf_counter() - started)
                        acks[which].append((key, result.version))
                    lag = wait_for_views(rt)
                    run = {"p50_ms": percentile(latencies, 50) * 1000,
                           "p99_ms": percentile(latencies, 99) * 1000,
                           "max_ms": max(latencies) * 1000,
                           "mean_ms": sum(latencies) / len(latencies) * 1000,
                           "writes_per_s": len(latencies) / sum(latencies),
                           "projector_lag_after_s": lag}
                    warm[which].append(run)
                    console.print(f"rep {rep + 1} {which:<5} p50 {run['p50_ms']:6.2f} ms  "
                                  f"p99 {run['p99_ms']:6.2f} ms  max {run['max_ms']:7.2f} ms")

            # ---- correctness ----------------------------------------------------------
            after = {w: current_versions(writer, tenants[w], keys) for w in tenants}
            checks: dict[str, Any] = {}
            for which in tenants:
                last = dict(before[which])
                consecutive = True
                for key, version in acks[which]:
                    consecutive &= version == last[key] + 1
                    last[key] = version
                grew = sum(after[which].values()) - sum(before[which].values())
                chain: Any = None
                try:
                    chain = bool(BlockingLedger(rt.ledger).verify(tenants[which]).ok)
                except Exception as error:
                    chain = f"verify failed: {type(error).__name__}"
                checks[which] = {
                    "acknowledged": len(acks[which]), "sum_of_versions_grew_by": grew,
                    "versions_consecutive": consecutive, "final_matches_last_ack":
                        last == after[which], "chain_verifies": chain,
                    "ok": consecutive and grew == len(acks[which]) and last == after[which]
                    and chain is True,
                }
        finally:
            rt.close()

    medians = {which: {m: median([r[m] for r in warm[which]])
                       for m in ("p50_ms", "p99_ms", "max_ms", "mean_ms", "writes_per_s")}
               for which in tenants}
    for which in tenants:
        medians[which]["cold_first_write_ms"] = median(cold[which]) * 1000
    ratios = {f"long/short {m}": ratio(medians["long"][m], medians["short"][m])
              for m in ("p50_ms", "p99_ms", "max_ms", "cold_first_write_ms")}
    rows = []
    for which in tenants:
        m = medians[which]
        rows.append([
            f"{which} ({info['events_before'][which]:,} events)",
            fmt(m["p50_ms"], 2), fmt(m["p99_ms"], 2), fmt(m["max_ms"], 2),
            fmt(m["writes_per_s"]), fmt(m["cold_first_write_ms"], 1),
            " / ".join(fmt(r["p50_ms"], 2) for r in warm[which]),
            " / ".join(fmt(r["p99_ms"], 2) for r in warm[which]),
        ])
    rows.append(["ratio long/short", *(fmt_ratio(ratios[f"long/short {m}"]) for m in (
        "p50_ms", "p99_ms", "max_ms")), "-", fmt_ratio(ratios["long/short cold_first_write_ms"]),
        "", ""])
    print_table(f"Figure 4 - put_secret latency by history length ({args.backend}, "
                f"{writes} writes x {args.reps}, medians)",
                ["tenant", "p50 ms", "p99 ms", "max ms", "writes/s (1 writer)",
                 "cold 1st write ms", "p50 each run", "p99 each run"], rows)
    ok = all(check["ok"] for check in checks.values())
    print_table("Correctness", ["tenant", "ok", "detail"], [
        [which, "yes" if check["ok"] else "[red]NO[/red]",
         ", ".join(f"{k}={v}" for k, v in check.items() if k != "ok")]
        for which, check in checks.items()
    ])
    suffix = "" if args.backend == "postgres" else f"_{args.backend}"
    write_json(NAME + suffix, {
        "config": {"backend": args.backend, "short": args.short, "long": long_events,
                   "keys": args.keys, "writes": writes, "warmup": WARMUP, "reps": args.reps,
                   "quick": args.quick},
        "info": info, "warm_runs": warm, "cold_first_write_s": cold, "medians": medians,
        "ratios": ratios, "checks": checks, "ok": ok,
    }, args.out)
    return verdict(ok)


if __name__ == "__main__":
    run_benchmark(main)
