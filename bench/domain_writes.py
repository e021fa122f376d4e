"""Figure 1: acknowledged writes/s and p50/p99 latency through the application core.

    /tmp/venv/bin/python bench/domain_writes.py [--quick] [--backend sqlite]

1 and 16 concurrent writers, (a) spread over 16 tenants, (b) all on one tenant (each
writer its own keys). Each write is one ``ledger.secrets.put`` of a 300-byte value,
in-process, awaited by a task on one event loop (as the HTTP front end awaits it), with
the runtime's projector thread following as in production; the baselines' writers are
threads.
Baselines in the same run, same payload, same concurrency:

- bare-insert: one row per write, INSERT + COMMIT, one connection per thread (psycopg on
  PostgreSQL, sqlite3 in a WAL file with synchronous=FULL, as the event store, on SQLite);
- bare-library: the ``eventsourcing`` library alone, one small aggregate per tenant,
  get -> command -> save, retried on IntegrityError (aggregate cache with fast-forward,
  as the ledger caches its tenants).

Repetitions are interleaved (rep 1 of every system, then rep 2 ...) and fresh tenants
are used for every measurement. At the end: zero lost updates (acknowledged ledger
writes == sum over keys of the current version, and each key's acknowledged versions
are exactly 1..current), and the baselines' stores hold exactly what they acknowledged.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import psycopg
from _common import (
    PAYLOAD,
    BlockingLedger,
    TimedRun,
    Workspace,
    base_parser,
    console,
    fmt,
    fmt_ratio,
    median,
    open_runtime,
    pg_version,
    print_table,
    ratio,
    run_benchmark,
    run_timed,
    run_timed_async,
    verdict,
    wait_for_views,
    workspace,
    write_json,
)
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event
from eventsourcing.persistence import IntegrityError

NAME = "domain_writes"
SYSTEMS = ("ledger", "bare-insert", "bare-library")
TENANTS_SPREAD = 16
KEYS_PER_THREAD = 8


class Counter(Aggregate):
    """The bare library's aggregate: one per tenant, one small event per write."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.writes = 0

    @staticmethod
    def create_id(name: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"/bench/tenants/{name}")

    @event("Written")
    def write(self, key: str, value: str) -> None:
        self.writes += 1


class BareLibrary(Application):  # type: ignore[type-arg]
    name = "BareLib"


def scenarios(threads: tuple[int, ...]) -> list[dict[str, Any]]:
    out = []
    for n in threads:
        out.append({"id": f"{n}w-spread", "threads": n, "tenants": TENANTS_SPREAD,
                    "label": f"{n} writer(s), {TENANTS_SPREAD} tenants"})
        out.append({"id": f"{n}w-one", "threads": n, "tenants": 1,
                    "label": f"{n} writer(s), 1 tenant"})
    return out


def tenant_of(thread: int, n: int, tenants: list[str]) -> str:
    # spread: thread i starts at tenant i and moves on each write (1 writer visits all).
    return tenants[(thread + n) % len(tenants)]


def key_of(thread: int, n: int) -> str:
    return f"w{thread:02d}/k{n % KEYS_PER_THREAD}"


# ---- the systems ------------------------------------------------------------------------


class LedgerSystem:
    name = "ledger"
    awaited = True  # the core's use cases are coroutines: writers are tasks on one loop

    def __init__(self, space: Workspace, pool_size: int | None, follow: bool,
                 prefix: str = "dw") -> None:
        from secrets_ledger.domain.changes import RequestContext

        self.schema = space.schema(prefix)
        self.rt = open_runtime(space, self.schema, pool_size=pool_size, follow=follow)
        self.ledger = BlockingLedger(self.rt.ledger)
        self.ctx = RequestContext(actor="bench", request_id="bench-write")
        self.acks: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()

    def prepare(self, tag: str, count: int) -> list[str]:
        names = [f"{tag}-t{i:02d}" for i in range(count)]
        for name in names:
            self.ledger.open_tenant(name, self.ctx)
        wait_for_views(self.rt)
        return names

    def op(self, tenants: list[str]) -> Any:
        """A write as a front end awaits it (one event loop, a task per writer)."""
        from secrets_ledger.core.principals import Principal
        from secrets_ledger.core.requests import RequestInfo

        put = self.rt.ledger.secrets.put
        caller, request, acks = Principal("bench", "admin", None), RequestInfo("bench"), self.acks

        async def write(writer: int, n: int) -> None:
            tenant, key = tenant_of(writer, n, tenants), key_of(writer, n)
            result = await put(caller, tenant, key, PAYLOAD, None, None, request)
            acks.append((tenant, key, result.version))

        return write

    def settle(self) -> float:
        return wait_for_views(self.rt)

    def check(self) -> dict[str, Any]:
        """Zero lost updates: every acknowledged write is a distinct stored version."""
        wait_for_views(self.rt)
        acked: dict[tuple[str, str], list[int]] = {}
        for tenant, key, version in self.acks:
            acked.setdefault((tenant, key), []).append(version)
        stored_sum, bad_keys = 0, []
        for (tenant, key), versions in acked.items():
            current, infos = self.ledger.list_versions(tenant, key)
            stored_sum += current
            if sorted(versions) != list(range(1, current + 1)) or len(infos) != current:
                bad_keys.append(f"{tenant}/{key}")
        ok = stored_sum == len(self.acks) and not bad_keys
        return {"ok": ok, "acknowledged": len(self.acks), "sum_of_current_versions": stored_sum,
                "keys": len(acked), "keys_with_lost_or_duplicate_versions": bad_keys[:20]}

    def close(self) -> None:
        self.rt.close()


class BareInsertSystem:
    name = "bare-insert"
    awaited = False

    def __init__(self, space: Workspace) -> None:
        self.space = space
        self.acks = 0
        self._lock = threading.Lock()
        self._conns: list[Any] = []
        if space.backend == "postgres":
            self.schema = space.schema("dw_bare")
            self.table = f'"{self.schema}".bare_writes'
            with psycopg.connect(space.url, autocommit=True) as conn:
                conn.execute(
                    f"CREATE TABLE {self.table} (id BIGSERIAL PRIMARY KEY, tenant TEXT NOT NULL,"
                    " key TEXT NOT NULL, payload BYTEA NOT NULL)"
                )
        else:
            self.path = space.data_dir / "bare.sqlite"
            with self._sqlite() as conn:
                conn.execute(
                    "CREATE TABLE bare_writes (id INTEGER PRIMARY KEY, tenant TEXT NOT NULL,"
                    " key TEXT NOT NULL, payload BLOB NOT NULL)"
                )

    def _sqlite(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        # FULL, as the library's event store leaves it: a commit is on disk when it returns,
        # which is what an acknowledged ledger write promises.
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=30000")
        return conn

    def prepare(self, tag: str, count: int) -> list[str]:
        return [f"{tag}-t{i:02d}" for i in range(count)]

    def op(self, tenants: list[str]) -> Any:
        payload = PAYLOAD.encode()
        local = threading.local()
        counts: list[int] = []

        def connection() -> Any:
            conn = getattr(local, "conn", None)
            if conn is None:
                conn = (psycopg.connect(self.space.url) if self.space.backend == "postgres"
                        else self._sqlite())
                local.conn = conn
                with self._lock:
                    self._conns.append(conn)
            return conn

        if self.space.backend == "postgres":
            sql = f"INSERT INTO {self.table} (tenant, key, payload) VALUES (%s, %s, %s)"

            def write(thread: int, n: int) -> None:
                conn = connection()
                conn.execute(sql, (tenant_of(thread, n, tenants), key_of(thread, n), payload))
                conn.commit()
                counts.append(1)
        else:
            sql = "INSERT INTO bare_writes (tenant, key, payload) VALUES (?, ?, ?)"

            def write(thread: int, n: int) -> None:
                conn = connection()
                conn.execute("BEGIN IMMEDIATE")
                conn.execute(sql, (tenant_of(thread, n, tenants), key_of(thread, n), payload))
                conn.execute("COMMIT")
                counts.append(1)

        self._counts = counts
        return write

    def settle(self) -> float:
        self.acks += len(self._counts)
        with self._lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()
        return 0.0

    def check(self) -> dict[str, Any]:
        if self.space.backend == "postgres":
            with psycopg.connect(self.space.url) as conn:
                row = conn.execute(f"SELECT count(*) FROM {self.table}").fetchone()
        else:
            with self._sqlite() as conn:
                row = conn.execute("SELECT count(*) FROM bare_writes").fetchone()
        stored = int(row[0]) if row else -1
        return {"ok": stored == self.acks, "acknowledged": self.acks, "rows": stored}

    def close(self) -> None:
        pass


class BareLibrarySystem:
    name = "bare-library"
    awaited = False

    def __init__(self, space: Workspace, threads: int) -> None:
        if space.backend == "postgres":
            from secrets_ledger.adapters.postgres.database import event_store_env
            from secrets_ledger.adapters.postgres.recorder import RECORDER_TOPIC

            env = event_store_env(space.url, space.schema("dw_lib"), threads, RECORDER_TOPIC)
        else:
            env = {"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                   "SQLITE_DBNAME": str(space.data_dir / "barelib.sqlite"),
                   "SQLITE_LOCK_TIMEOUT": "30"}
        env["AGGREGATE_CACHE_MAXSIZE"] = "1000"  # fast-forwarded, deep-copied per get
        self.app = BareLibrary(env=env)
        self.acks = 0
        self.retries = 0
        self.names: list[str] = []

    def prepare(self, tag: str, count: int) -> list[str]:
        names = [f"{tag}-t{i:02d}" for i in range(count)]
        self.app.save(*[Counter(name) for name in names])
        self.names.extend(names)
        return names

    def op(self, tenants: list[str]) -> Any:
        app = self.app
        ids = {name: Counter.create_id(name) for name in tenants}
        counts: list[int] = []
        retries: list[int] = []

        def write(thread: int, n: int) -> None:
            aggregate_id = ids[tenant_of(thread, n, tenants)]
            for _ in range(1000):
                aggregate: Counter = app.repository.get(aggregate_id)
                aggregate.write(key_of(thread, n), PAYLOAD)
                try:
                    app.save(aggregate)
                except IntegrityError:
                    retries.append(1)
                    continue
                counts.append(1)
                return
            raise RuntimeError("too many retries")

        self._counts, self._retries = counts, retries
        return write

    def settle(self) -> float:
        self.acks += len(self._counts)
        self.retries += len(self._retries)
        return 0.0

    def check(self) -> dict[str, Any]:
        stored = 0
        for name in self.names:
            aggregate: Counter = self.app.repository.get(Counter.create_id(name))
            stored += aggregate.writes
        return {"ok": stored == self.acks, "acknowledged": self.acks,
                "sum_of_aggregate_writes": stored, "retries": self.retries}

    def close(self) -> None:
        self.app.close()


# ---- the run ----------------------------------------------------------------------------


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds per measurement (default 3, --quick 1)")
    parser.add_argument("--threads", default="1,16", help="writer thread counts")
    parser.add_argument("--pool-size", type=int, default=None,
                        help="ledger pool_size setting (default: the Settings default)")
    parser.add_argument("--no-follow", action="store_true",
                        help="diagnostic: no projector thread while writing (the views are "
                             "projected between measurements instead)")
    args = parser.parse_args()
    duration = args.duration or (1.0 if args.quick else 3.0)
    threads = tuple(int(t) for t in args.threads.split(","))
    plan = scenarios(threads)

    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        s["id"]: {system: [] for system in SYSTEMS} for s in plan
    }
    with workspace(args.backend) as space:
        console.print(f"[bold]{NAME}[/bold]: backend={args.backend} duration={duration}s "
                      f"reps={args.reps} threads={threads}"
                      + (f" postgres={pg_version(space.url)}" if args.backend == "postgres"
                         else ""))
        systems: dict[str, Any] = {
            "ledger": LedgerSystem(space, args.pool_size, not args.no_follow),
            "bare-insert": BareInsertSystem(space),
            "bare-library": BareLibrarySystem(space, max(threads)),
        }
        try:
            for rep in range(args.reps):
                for scenario in plan:
                    for system_name in SYSTEMS:
                        system = systems[system_name]
                        tag = f"{scenario['id']}-r{rep}"
                        tenants = system.prepare(tag, scenario["tenants"])
                        op = system.op(tenants)
                        timed = run_timed_async if system.awaited else run_timed
                        run: TimedRun = timed(scenario["threads"], duration, op)
                        lag = system.settle()
                        summary = run.summary()
                        summary["projector_lag_after_s"] = lag
                        if system_name == "bare-library":
                            summary["retries"] = len(system._retries)
                        runs[scenario["id"]][system_name].append(summary)
                        console.print(
                            f"rep {rep + 1} {scenario['label']:<28} {system_name:<13}"
                            f" {run.rate:9,.0f} writes/s  p50 {summary['p50_ms']:7.2f} ms"
                            f"  p99 {summary['p99_ms']:7.2f} ms"
                            + (f"  errors {run.errors}" if run.errors else "")
                            + (f"  views caught up {lag:.2f}s later" if lag > 0.05 else "")
                        )
            checks = {name: system.check() for name, system in systems.items()}
        finally:
            for system in systems.values():
                system.close()

    # ---- report -------------------------------------------------------------------------
    medians: dict[str, dict[str, dict[str, float]]] = {}
    rows, ratio_rows = [], []
    for scenario in plan:
        sid = scenario["id"]
        medians[sid] = {}
        for system_name in SYSTEMS:
            reps = runs[sid][system_name]
            medians[sid][system_name] = {
                metric: median([r[metric] for r in reps])
                for metric in ("ops_per_s", "p50_ms", "p99_ms")
            }
            m = medians[sid][system_name]
            rows.append([
                scenario["label"] if system_name == "ledger" else "",
                system_name,
                fmt(m["ops_per_s"]),
                " / ".join(fmt(r["ops_per_s"]) for r in reps),
                fmt(m["p50_ms"], 2),
                fmt(m["p99_ms"], 2),
            ])
        led, ins, lib = (medians[sid][s] for s in SYSTEMS)
        medians[sid]["ratios"] = {
            "ledger/bare-insert writes/s": ratio(led["ops_per_s"], ins["ops_per_s"]),
            "ledger/bare-library writes/s": ratio(led["ops_per_s"], lib["ops_per_s"]),
            "ledger/bare-insert p50": ratio(led["p50_ms"], ins["p50_ms"]),
            "ledger/bare-library p50": ratio(led["p50_ms"], lib["p50_ms"]),
            "ledger/bare-insert p99": ratio(led["p99_ms"], ins["p99_ms"]),
            "ledger/bare-library p99": ratio(led["p99_ms"], lib["p99_ms"]),
        }
        ratio_rows.append([scenario["label"], *(fmt_ratio(v) for v in
                                                 medians[sid]["ratios"].values())])

    print_table(
        f"Figure 1 - acknowledged writes ({args.backend}, {duration:g} s each, "
        f"median of {args.reps})",
        ["scenario", "system", "writes/s", "each run", "p50 ms", "p99 ms"], rows,
    )
    print_table("Figure 1 - ledger as a ratio of the baselines (medians)",
                ["scenario", "w/s vs insert", "w/s vs library", "p50 vs insert",
                 "p50 vs library", "p99 vs insert", "p99 vs library"], ratio_rows)
    all_ok = all(check["ok"] for check in checks.values())
    print_table("Correctness", ["system", "ok", "detail"], [
        [name, "yes" if check["ok"] else "[red]NO[/red]",
         ", ".join(f"{k}={v}" for k, v in check.items() if k != "ok")]
        for name, check in checks.items()
    ])
    suffix = "" if args.backend == "postgres" else f"_{args.backend}"
    write_json(NAME + suffix, {
        "config": {"backend": args.backend, "duration_s": duration, "reps": args.reps,
                   "threads": threads, "tenants_spread": TENANTS_SPREAD,
                   "keys_per_thread": KEYS_PER_THREAD, "payload_bytes": len(PAYLOAD),
                   "ledger_pool_size": args.pool_size, "projector_following": not args.no_follow,
                   "quick": args.quick},
        "scenarios": plan, "runs": runs, "medians": medians, "checks": checks,
        "ok": all_ok,
    }, args.out)
    return verdict(all_ok)


if __name__ == "__main__":
    run_benchmark(main)
