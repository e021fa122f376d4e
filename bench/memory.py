"""Figure 5: resident memory of ``secrets-ledger serve`` holding 100,000 secrets.

    /tmp/venv/bin/python bench/memory.py [--quick] [--backend sqlite|postgres] [--reps N]

For each backend (both unless ``--backend`` names one: SQLite as configured by default,
only ``LEDGER_DATA_DIR``; PostgreSQL in a fresh schema with the master key from the
environment), the store is filled through the in-process API: 1,000 tenants
(``--quick`` 100), each opened and given 100 secrets of a 300-byte value in one
``write_secrets`` call, from 16 threads (the group-commit writer batches them), and the
views catch up. Then ``secrets-ledger serve`` starts on that storage, and every secret
is read once over HTTP (``GET /v1/tenants/{t}/secrets/{key}`` with the admin token, 32
concurrent keep-alive connections from ``_loadgen.py``, in a shuffled order), ``--reps``
times (default 1, ``--quick`` 3): RSS growing from pass to pass would be a leak.

Memory is ``VmRSS`` of the serve process from ``/proc/<pid>/status``: when it answers
(``/healthz``, views caught up) and after each pass, plus the highest value sampled
every 0.25 s during the passes and the kernel's high-water mark ``VmHWM``. The target
is < 500 MB after the reads. Correctness: every read answered 200 and the audit trail
holds one ``read`` row per acknowledged read (per tenant, over the API).
"""

from __future__ import annotations

import os
import sys

_BENCH = os.path.dirname(os.path.abspath(__file__))
if sys.path and os.path.abspath(sys.path[0] or os.curdir) == _BENCH:
    sys.path.append(sys.path.pop(0))  # bench/http.py must not hide the standard library's

import random  # noqa: E402
import time  # noqa: E402
from concurrent.futures import ThreadPoolExecutor  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import psycopg  # noqa: E402
from _common import (  # noqa: E402
    PAYLOAD,
    BlockingLedger,
    Workspace,
    base_parser,
    console,
    database_url,
    fmt,
    pg_version,
    print_table,
    run_benchmark,
    verdict,
    wait_for_views,
    workspace,
    write_json,
)
from _servers import (  # noqa: E402
    ledger_server,
    new_bootstrap_token,
    new_master_key,
    run_loadgen,
    status_kb,
    wait_views,
)

NAME = "memory"
KEYS_PER_TENANT = 100
TARGET_MB = 500.0
FILL_THREADS = 16
READ_CONCURRENCY = 32


def tenant_names(count: int) -> list[str]:
    return [f"mem-t{i:04d}" for i in range(count)]


def secret_keys() -> list[str]:
    return [f"app/secret-{k:03d}" for k in range(KEYS_PER_TENANT)]


def settings_for(space: Workspace, schema: str | None, master_key: str | None) -> Any:
    from secrets_ledger.core.settings import Settings

    options: dict[str, Any] = {"data_dir": space.data_dir / "ledger"}
    if schema is not None:
        options.update(database_url=space.url, database_schema=schema, master_key=master_key)
    return Settings(**options)


def fill(settings: Any, tenants: list[str]) -> dict[str, float]:
    """Opens the tenants and writes 100 secrets into each, through the ledger's API."""
    from secrets_ledger.domain.changes import RequestContext, SetValue
    from secrets_ledger.runtime import LedgerRuntime

    keys = secret_keys()
    values = dict.fromkeys(keys, PAYLOAD)
    changes = [SetValue(key) for key in keys]
    timings: dict[str, float] = {}
    with LedgerRuntime(settings, follow=True) as rt:
        ledger = BlockingLedger(rt.ledger)
        ctx = RequestContext(actor="bench-fill", request_id="fill")
        started = time.perf_counter()
        with ThreadPoolExecutor(FILL_THREADS) as pool:
            list(pool.map(lambda name: ledger.open_tenant(name, ctx), tenants))
        timings["open_tenants_s"] = time.perf_counter() - started
        started = time.perf_counter()
        with ThreadPoolExecutor(FILL_THREADS) as pool:
            written = list(pool.map(
                lambda name: len(ledger.write_secrets(name, changes, values, ctx)), tenants))
        timings["write_secrets_s"] = time.perf_counter() - started
        if sum(written) != len(tenants) * len(keys):
            raise RuntimeError(f"wrote {sum(written)} secrets, expected "
                               f"{len(tenants) * len(keys)}")
        timings["views_catch_up_s"] = wait_for_views(rt)
    return timings


def store_bytes(space: Workspace, schema: str | None) -> int:
    if schema is None:
        return sum(p.stat().st_size for p in (space.data_dir / "ledger").rglob("*")
                   if p.is_file())
    with psycopg.connect(space.url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relkind IN ('r', 'm')", (schema,)).fetchone()
    return int(row[0]) if row else -1


def audit_reads(base_url: str, admin: dict[str, str], tenants: list[str]) -> int:
    total = 0
    with httpx.Client(base_url=base_url, timeout=120.0, headers=admin) as client:
        for tenant in tenants:
            cursor = None
            while True:
                params = {"action": "read", "limit": "1000"}
                if cursor is not None:
                    params["cursor"] = cursor
                response = client.get(f"/v1/tenants/{tenant}/audit", params=params)
                if response.status_code != 200:
                    raise RuntimeError(f"audit of {tenant}: {response.status_code} "
                                       f"{response.text[:300]}")
                page = response.json()
                total += len(page["items"])
                cursor = page.get("next_cursor")
                if not cursor:
                    break
    return total


def measure(backend: str, tenant_count: int, passes: int) -> dict[str, Any]:
    tenants = tenant_names(tenant_count)
    keys = secret_keys()
    out: dict[str, Any] = {"backend": backend, "tenants": tenant_count,
                           "secrets": tenant_count * len(keys)}
    with workspace(backend) as space:
        schema = space.schema("mem") if backend == "postgres" else None
        master_key = new_master_key() if backend == "postgres" else None
        console.print(f"[bold]{backend}[/bold]: filling {out['secrets']:,} secrets over "
                      f"{tenant_count:,} tenants ...")
        out["fill"] = fill(settings_for(space, schema, master_key), tenants)
        out["store_bytes"] = store_bytes(space, schema)
        console.print("  fill: " + ", ".join(f"{k} {v:.1f}" for k, v in out["fill"].items())
                      + f", store {out['store_bytes'] / 2**20:,.0f} MiB")

        bootstrap = new_bootstrap_token()
        server = ledger_server(space.data_dir / "servers",
                               database_url=space.url if schema else None, schema=schema,
                               data_dir=space.data_dir / "ledger", master_key=master_key,
                               bootstrap_token=bootstrap, name=f"ledger-{backend}")
        admin = {"Authorization": f"Bearer {bootstrap}"}
        try:
            started = time.perf_counter()
            server.start("/healthz")
            wait_views(server)
            out["startup_s"] = time.perf_counter() - started
            out["rss_start_kb"] = server.rss_kb()
            console.print(f"  serve answering after {out['startup_s']:.1f} s: RSS "
                          f"{out['rss_start_kb'] / 1024:,.1f} MiB")
            paths = [f"/v1/tenants/{t}/secrets/{k}" for t in tenants for k in keys]
            out["passes"] = []
            acknowledged = 0
            for number in range(passes):
                random.Random(number).shuffle(paths)
                peak = [server.rss_kb()]

                def sample(peak: list[int] = peak) -> None:
                    peak[0] = max(peak[0], server.rss_kb())

                result = run_loadgen({"host": "127.0.0.1", "port": server.port,
                                      "method": "GET", "paths": paths, "headers": admin,
                                      "concurrency": READ_CONCURRENCY}, server, sample)
                result.pop("bodies", None)
                acknowledged += result["acknowledged"]
                record = {"rss_after_kb": server.rss_kb(), "rss_peak_sampled_kb": peak[0],
                          "hwm_kb": status_kb(server.pid, "VmHWM"), **result}
                record["rss_peak_sampled_kb"] = max(record["rss_peak_sampled_kb"],
                                                    record["rss_after_kb"])
                out["passes"].append(record)
                console.print(
                    f"  pass {number + 1}: {result['acknowledged']:,} reads at "
                    f"{result['ops_per_s']:,.0f}/s (p50 {result['p50_ms']:.1f} ms, p99 "
                    f"{result['p99_ms']:.1f} ms)  RSS after {record['rss_after_kb'] / 1024:,.1f}"
                    f" MiB, peak sampled {record['rss_peak_sampled_kb'] / 1024:,.1f} MiB,"
                    f" VmHWM {record['hwm_kb'] / 1024:,.1f} MiB"
                    + (f"  [red]statuses {result['statuses']} errors {result['errors']}[/red]"
                       if result["acknowledged"] != len(paths) else ""))
            out["rss_after_kb"] = out["passes"][-1]["rss_after_kb"]
            out["rss_peak_kb"] = max(p["rss_peak_sampled_kb"] for p in out["passes"])
            out["hwm_kb"] = out["passes"][-1]["hwm_kb"]
            wait_views(server)
            audited = audit_reads(server.base_url, admin, tenants)
        finally:
            out["exit_code"] = server.stop()
        expected = passes * len(paths)
        out["check"] = {
            "ok": acknowledged == expected and audited == acknowledged,
            "reads_expected": expected, "reads_acknowledged": acknowledged,
            "audit_read_rows": audited,
        }
        out["target_met"] = out["hwm_kb"] / 1024 < TARGET_MB
    return out


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.set_defaults(backend=None, reps=None)
    parser.add_argument("--tenants", type=int, default=None,
                        help="tenants of 100 secrets each (default 1,000, --quick 100)")
    args = parser.parse_args()
    tenant_count = args.tenants or (100 if args.quick else 1000)
    passes = args.reps or (3 if args.quick else 1)
    backends = [args.backend] if args.backend else ["sqlite", "postgres"]
    console.print(f"[bold]{NAME}[/bold]: {tenant_count * KEYS_PER_TENANT:,} secrets over "
                  f"{tenant_count:,} tenants, backends={','.join(backends)}, "
                  f"{passes} read pass(es)"
                  + (f", postgres={pg_version(database_url())}"
                     if "postgres" in backends else ""))
    results = {backend: measure(backend, tenant_count, passes) for backend in backends}

    rows = []
    for backend, r in results.items():
        first = r["passes"][0]
        rows.append([
            backend, f"{r['secrets']:,} / {r['tenants']:,}",
            fmt(r["store_bytes"] / 2**20), fmt(r["rss_start_kb"] / 1024, 1),
            " / ".join(fmt(p["rss_after_kb"] / 1024, 1) for p in r["passes"]),
            fmt(r["rss_peak_kb"] / 1024, 1), fmt(r["hwm_kb"] / 1024, 1),
            f"< {TARGET_MB:.0f}: " + ("met" if r["target_met"] else "[red]NOT met[/red]"),
            fmt(first["ops_per_s"]), fmt(first["p50_ms"], 1), fmt(first["p99_ms"], 1),
        ])
    print_table(
        f"Figure 5 - resident memory of secrets-ledger serve (MiB; {passes} read pass(es) of "
        "every secret over HTTP)",
        ["backend", "secrets / tenants", "store MiB", "RSS start", "RSS after each pass",
         "RSS peak (sampled)", "VmHWM", "target", "reads/s (pass 1)", "p50 ms", "p99 ms"],
        rows, caption=f"{READ_CONCURRENCY} concurrent keep-alive connections, admin token; "
                      "target judged on VmHWM")
    print_table("Fill (in-process API, 16 threads) and start-up, seconds",
                ["backend", "open tenants", "write secrets", "views catch up", "serve ready"],
                [[b, fmt(r["fill"]["open_tenants_s"], 1), fmt(r["fill"]["write_secrets_s"], 1),
                  fmt(r["fill"]["views_catch_up_s"], 1), fmt(r["startup_s"], 1)]
                 for b, r in results.items()])
    all_ok = all(r["check"]["ok"] for r in results.values())
    print_table("Correctness", ["backend", "ok", "detail"], [
        [b, "yes" if r["check"]["ok"] else "[red]NO[/red]",
         ", ".join(f"{k}={v}" for k, v in r["check"].items() if k != "ok")
         + f", serve exit code={r['exit_code']}"]
        for b, r in results.items()])
    name = NAME if len(backends) > 1 or backends == ["postgres"] else f"{NAME}_{backends[0]}"
    write_json(name, {
        "config": {"backends": backends, "tenants": tenant_count,
                   "keys_per_tenant": KEYS_PER_TENANT, "payload_bytes": len(PAYLOAD),
                   "passes": passes, "read_concurrency": READ_CONCURRENCY,
                   "fill_threads": FILL_THREADS, "target_mb": TARGET_MB, "quick": args.quick},
        "results": results, "ok": all_ok,
    }, args.out)
    return verdict(all_ok)


if __name__ == "__main__":
    run_benchmark(main)
