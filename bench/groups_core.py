"""Tenant groups through the core, in one process (no HTTP): where the writes' time goes
when the same 16 writers are split over 1, 2 and 4 groups on the one PostgreSQL server.

    python bench/groups_core.py [--quick] [--reps N] [--duration S] [--out PATH]

``bench/groups.py`` measures the issue's figure over HTTP; this one takes HTTP away, so
that what is left is the core, its group-commit writers and projectors, and PostgreSQL.
Each configuration opens the runtime ``serve`` would (``grouped_runtime.open_runtime``:
one writer thread, projector and pool per group) on fresh schemas, 16 tenants placed
evenly by rendezvous placement, and 16 writer tasks on one event loop (as the HTTP front
end awaits the core), each writing 8 keys of its own tenant, a new 300-byte value every
write, for ``--duration`` seconds (default 8; ``--quick`` 2). Configurations alternate
within each repetition (3; ``--quick`` 1).

Reported, medians: writes/s, p50/p99, this process's CPU per write (the writers' and
projectors' threads included), how busy the machine's cores were (PostgreSQL included),
and the database's commits per write (from
``pg_stat_database``: the lower, the more writes each group commit carried; other clients
of the server count too). After every run each key's acknowledged versions are read back:
exactly 1..current, none lost or twice.
"""

from __future__ import annotations

import base64
import itertools
import os
import time
from typing import Any

import psycopg
from _common import (
    PAYLOAD,
    BlockingLedger,
    base_parser,
    console,
    create_schema,
    fmt,
    fmt_ratio,
    median,
    pg_version,
    print_table,
    ratio,
    run_benchmark,
    run_timed_async,
    verdict,
    workspace,
    write_json,
)

from secrets_ledger.core.directory import placement
from secrets_ledger.core.principals import Principal
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.core.settings import Settings
from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.grouped_runtime import open_runtime

NAME = "groups_core"
WRITERS, KEYS = 16, 8
CONFIGS = {"1 group": 1, "2 groups": 2, "4 groups": 4}
GROUP_NAMES = ("home", "g2", "g3", "g4")
METRICS = ("ops_per_s", "p50_ms", "p99_ms", "cpu_ms_per_write", "commits_per_write",
           "machine_busy_pct")


def machine_ticks() -> tuple[int, int]:
    """The machine's CPU time so far, all and idle (``/proc/stat``: idle and iowait)."""
    with open("/proc/stat") as stat:
        ticks = [int(field) for field in stat.readline().split()[1:]]
    return sum(ticks), ticks[3] + ticks[4]


def commits(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SELECT xact_commit FROM pg_stat_database"
                           " WHERE datname = current_database()").fetchone()
    return int(row[0]) if row else 0


def run_configuration(space: Any, groups: int, tag: str, duration: float,
                      master_key: str) -> dict[str, Any]:
    names = GROUP_NAMES[:groups]
    prefix = f"bench_gc_{os.getpid()}_{tag}"
    schemas = {name: prefix if name == "home" else f"{prefix}_{name}" for name in names}
    for schema in schemas.values():
        space.schemas.append(schema)  # dropped at the end
        create_schema(space.url, schema)
    options: dict[str, Any] = {"data_dir": space.data_dir / prefix, "database_url": space.url,
                               "database_schema": schemas["home"], "master_key": master_key}
    if groups > 1:
        options["groups"] = {name: {"database_schema": schema}
                             for name, schema in schemas.items() if name != "home"}
    rt = open_runtime(Settings(**options))
    try:
        ledger = BlockingLedger(rt.ledger)
        candidates = (f"{tag}-t{i:03d}" for i in itertools.count())
        ordered = sorted(names)
        tenants = [next(c for c in candidates
                        if groups == 1 or placement(c, ordered) == names[n % groups])
                   for n in range(WRITERS)]
        for tenant in tenants:
            ledger.open_tenant(tenant, RequestContext("bench", "open"))
        put, caller = rt.ledger.secrets.put, Principal("bench", "admin", None)
        acked: dict[tuple[str, str], list[int]] = {}

        async def write(writer: int, n: int) -> None:
            tenant, key = tenants[writer], f"w{writer:02d}/k{n % KEYS}"
            result = await put(caller, tenant, key, PAYLOAD, None, None, RequestInfo("bench"))
            acked.setdefault((tenant, key), []).append(int(result.version))

        committed, cpu, machine = commits(space.url), os.times(), machine_ticks()
        run = run_timed_async(WRITERS, duration, write)
        cpu_after, machine_after = os.times(), machine_ticks()
        committed_after = commits(space.url)
        used = cpu_after.user - cpu.user + cpu_after.system - cpu.system
        bad = [f"{tenant}/{key}" for (tenant, key), versions in acked.items()
               if sorted(versions) != list(range(1, ledger.list_versions(tenant, key)[0] + 1))]
        summary = run.summary()
        summary.update(cpu_ms_per_write=used * 1000 / run.ok if run.ok else float("nan"),
                       commits_per_write=(committed_after - committed) / run.ok
                       if run.ok else float("nan"),
                       machine_busy_pct=100 * (1 - (machine_after[1] - machine[1])
                                               / max(1, machine_after[0] - machine[0])),
                       keys_with_lost_or_duplicate_versions=bad[:20], ok=not bad)
        return summary
    finally:
        rt.close()


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=None)
    args = parser.parse_args()
    if args.backend != "postgres":
        parser.error("tenant groups need PostgreSQL")
    duration = args.duration or (2.0 if args.quick else 8.0)
    reps = 1 if args.quick else args.reps
    master_key = base64.b64encode(os.urandom(32)).decode()
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in CONFIGS}
    with workspace("postgres") as space:
        console.print(f"[bold]{NAME}[/bold]: {WRITERS} writers, {duration:g} s, reps={reps}"
                      f" postgres={pg_version(space.url)}")
        for rep in range(reps):
            for label, groups in CONFIGS.items():
                found = run_configuration(space, groups, f"{groups}g{rep}", duration,
                                          master_key)
                runs[label].append(found)
                console.print(f"rep {rep + 1} {label:<9} {found['ops_per_s']:7,.0f} writes/s"
                              f"  p50 {found['p50_ms']:6.2f} ms  cpu/write"
                              f" {found['cpu_ms_per_write']:.3f} ms  commits/write"
                              f" {found['commits_per_write']:.3f}")
    medians = {label: {metric: median([r[metric] for r in reps_])
                       for metric in METRICS} for label, reps_ in runs.items()}
    base = medians["1 group"]["ops_per_s"]
    print_table(f"Tenant groups through the core ({duration:g} s each, median of {reps})",
                ["groups", "writes/s", "x 1 group", "p50 ms", "p99 ms", "CPU ms/write",
                 "commits/write", "machine busy %"],
                [[label, fmt(m["ops_per_s"]), fmt_ratio(ratio(m["ops_per_s"], base)),
                  fmt(m["p50_ms"], 2), fmt(m["p99_ms"], 2), fmt(m["cpu_ms_per_write"], 3),
                  fmt(m["commits_per_write"], 3), fmt(m["machine_busy_pct"])]
                 for label, m in medians.items()])
    ok = all(r["ok"] for reps_ in runs.values() for r in reps_)
    write_json(NAME, {"config": {"writers": WRITERS, "keys_per_writer": KEYS,
                                 "payload_bytes": len(PAYLOAD), "duration_s": duration,
                                 "reps": reps, "configurations": CONFIGS},
                      "runs": runs, "medians": medians,
                      "ratios": {label: ratio(m["ops_per_s"], base)
                                 for label, m in medians.items()},
                      "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                      "ok": ok}, args.out)
    return verdict(ok)


if __name__ == "__main__":
    run_benchmark(main)
