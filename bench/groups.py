"""Tenant groups: HTTP write throughput and latency of ``secrets-ledger serve`` (one
process, or ``--servers N`` side by side) with 1, 2 and 4 tenant groups on the one
PostgreSQL server.

    python bench/groups.py [--quick] [--reps N] [--duration S] [--servers N] [--out PATH]
                           [--standby [--base-port P]]

Three configurations of ``serve``, each on schemas of its own (``bench_groups_<pid>_…``):

- ``1 group``: the ordinary storage (``LEDGER_DATABASE_SCHEMA``), no ``LEDGER_GROUPS``;
- ``2 groups``: the home group and ``g2`` (``LEDGER_GROUPS``), a schema each on the same
  server: two events tables (two table locks), two writer threads, two projectors, in
  the one server process;
- ``4 groups``: home, ``g2``, ``g3`` and ``g4``.

16 keep-alive connections (asyncio on uvloop, in this process: the load is not the
server's) each PUT a 300-byte value, a new one every write, to 8 keys of a tenant of
their own (16 tenants, one writer token each) for ``--duration`` seconds (default 10,
after 1 s of warmup). The tenants are new in every run, named so that rendezvous
placement (``core.directory.placement``) puts as many in each group (16 / groups); the
directory is read to confirm where they went. The configurations alternate in each
repetition (3; ``--quick``: 1 of 3 s), each run on a ``serve`` started for it and stopped
after it (one configuration running at a time). Reported: the medians of writes/s, p50
and p99, and ratios against ``1 group``. Issue's target: 2 groups at least 1.3x one group.

``--servers N`` (default 1): each run starts N ``serve`` processes on the same storage and
group configuration (the same ``LEDGER_*`` environment and data directory, the same
bootstrap token; each on its own port), one after the other; the tenants and tokens are
made through the first. Writer ``i`` sticks to server ``(i // groups) % N``, so that every
server has as many writers of each group (16 / N in all). Server CPU is the sum over the
N processes (their PostgreSQL backends too); each key is read back through its writer's
server, every server's views caught up first.

After every run (the views caught up), each key written is read back with the tenant's
writer token: its versions are exactly the acknowledged ones (1..current, none lost or
twice), and its current value is the last one acknowledged; exit status 1 otherwise.

``--standby``: the same on a pg_auto_failover pair (``_pgaf.py``, monitor on port P,
default 57460, nodes on P+1 and P+2) with its synchronous standby: every group a schema
on the pair's multi-host URL (``bench/results/groups_standby.json``).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from math import nan
from pathlib import Path
from typing import Any

import httpx
import psycopg
import uvloop
from _common import (
    PAYLOAD,
    Workspace,
    console,
    create_schema,
    drop_schema,
    fmt,
    fmt_ratio,
    median,
    percentile,
    pg_version,
    print_table,
    ratio,
    run_benchmark,
    verdict,
    workspace,
    write_json,
)
from _servers import (
    CpuSample,
    Server,
    cpu_between,
    ledger_server,
    new_bootstrap_token,
    new_master_key,
    wait_views,
)

from secrets_ledger.core.directory import placement

NAME = "groups"
WRITERS = 16
KEYS = 8  # keys per writer (each written by its writer only, one write at a time)
CONFIGS = {"1 group": 1, "2 groups": 2, "4 groups": 4}
BASELINE = "1 group"
GROUP_NAMES = ("home", "g2", "g3", "g4")  # the home group first
TARGET = ("2 groups", 1.3)  # the issue's: 2 groups >= 1.3x one group's writes/s
METRICS = ("ops_per_s", "p50_ms", "p99_ms", "server_cpu_pct", "postgres_cpu_pct",
           "machine_busy_pct", "load_cpu_pct", "server_cpu_ms_per_write", "pg_commits_per_s",
           "pg_wal_syncs_per_s")


# ---- a configuration: its schemas and its server ----------------------------------------


class Configuration:
    """The schemas (the home group's and one per further group) and the data directory of
    one configuration, kept over the repetitions; a ``serve`` is started for each run."""

    def __init__(self, space: Workspace, label: str, groups: int, master_key: str,
                 bootstrap: str) -> None:
        self.space, self.label = space, label
        self.groups = list(GROUP_NAMES[:groups])
        self.id = f"{groups}g"
        prefix = f"bench_groups_{os.getpid()}_{self.id}"
        self.schemas = {group: prefix if group == "home" else f"{prefix}_{group}"
                        for group in self.groups}
        for schema in self.schemas.values():
            space.schemas.append(schema)  # dropped at the end
            create_schema(space.url, schema)
        self.master_key, self.bootstrap = master_key, bootstrap

    def servers(self, count: int) -> list[Server]:
        """``count`` servers on the same storage, groups, data directory and bootstrap token
        (each its own port, and so its own PGAPPNAME)."""
        servers = []
        for n in range(count):
            server = ledger_server(self.space.data_dir / "servers", database_url=self.space.url,
                                   schema=self.schemas["home"],
                                   data_dir=self.space.data_dir / f"ledger-{self.id}",
                                   master_key=self.master_key, bootstrap_token=self.bootstrap,
                                   name=f"groups-{self.id}-s{n}")
            if len(self.groups) > 1:
                server.env["LEDGER_GROUP_NAME"] = "home"
                server.env["LEDGER_GROUPS"] = json.dumps({
                    group: {"database_schema": schema}
                    for group, schema in self.schemas.items() if group != "home"})
            servers.append(server)
        return servers

    def tenant_names(self, rep: int) -> dict[str, str]:
        """WRITERS new tenant names -> their group, as many in each group: candidate names
        are tried in turn and kept where ``placement`` puts them in the group wanted."""
        ordered = sorted(self.groups)
        candidates = (f"{self.id}-r{rep}-t{i:03d}" for i in itertools.count())
        names = {}
        for n in range(WRITERS):
            wanted = self.groups[n % len(self.groups)]
            name = next(c for c in candidates if len(self.groups) == 1
                        or placement(c, ordered) == wanted)
            names[name] = wanted
        return names

    def directory(self, tenants: list[str]) -> dict[str, str]:
        """Where the server placed the tenants (the home group's directory)."""
        if len(self.groups) == 1:
            return dict.fromkeys(tenants, "home")
        with psycopg.connect(self.space.url, autocommit=True, connect_timeout=10) as conn:
            rows = conn.execute(
                f'SELECT tenant, group_name FROM "{self.schemas["home"]}".tenant_directory'
                " WHERE tenant = ANY(%s)", (tenants,)).fetchall()
        return {str(tenant): str(group) for tenant, group in rows}


# ---- the writers ------------------------------------------------------------------------


class Writer:
    """One keep-alive connection writing the keys of one tenant, one write at a time; every
    write a new value (``n``, zero-padded, then the 300-byte payload's tail)."""

    def __init__(self, index: int, tenant: str, group: str, token: str, server: Server
                 ) -> None:
        self.index, self.tenant, self.group, self.token = index, tenant, group, token
        self.server = server  # the one it writes to and is checked through
        self.head = (f"Host: ledger\r\nAuthorization: Bearer {token}\r\n"
                     "Content-Type: application/json\r\n")
        self.acked: dict[str, list[tuple[int, str]]] = {}  # key -> [(version, value)]
        self.uncertain: set[str] = set()  # keys with a write sent and never answered
        self.sent = 0

    def key(self, n: int) -> str:
        return f"w{self.index:02d}-k{n % KEYS}"

    def request(self, key: str, value: str) -> bytes:
        body = json.dumps({"value": value}).encode()
        return (f"PUT /v1/tenants/{self.tenant}/secrets/{key} HTTP/1.1\r\n{self.head}"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def exchange(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes
                   ) -> tuple[int, bytes]:
    """One request on a keep-alive connection: its status and body (answers have a
    Content-Length)."""
    conn[1].write(request)
    head = (await conn[0].readuntil(b"\r\n\r\n")).lower()
    length = next((int(line[15:]) for line in head.split(b"\r\n")
                   if line.startswith(b"content-length:")), 0)
    return int(head.split(b" ", 2)[1]), await conn[0].readexactly(length)


def cpu_of(first: list[CpuSample], final: list[CpuSample]) -> dict[str, Any]:
    """The servers' CPU over a window: summed over the processes (and their backends);
    the machine's busy share from the first server's samples."""
    each = [cpu_between(a, b) for a, b in zip(first, final, strict=True)]
    if not all(each):
        return {}
    out: dict[str, Any] = {name: sum(cpu[name] for cpu in each) for name in (
        "server_cpu_pct", "server_user_pct", "server_sys_pct", "postgres_cpu_pct")}
    out["machine_busy_pct"] = each[0]["machine_busy_pct"]
    out["server_cpu_pct_each"] = [cpu["server_cpu_pct"] for cpu in each]
    out["postgres_cpu_pct_each"] = [cpu["postgres_cpu_pct"] for cpu in each]
    return out


async def writes(servers: list[Server], writers: list[Writer], duration: float,
                 warmup: float) -> dict[str, Any]:
    clock, latencies = time.perf_counter, list[float]()
    samples: list[tuple[list[CpuSample], tuple[int, int]]] = []
    statuses, errors, by_group = Counter[str](), Counter[str](), Counter[str]()
    by_server = Counter[str]()
    load_cpu: list[float] = []
    start = clock() + warmup
    end = last = start + duration

    async def write(writer: Writer) -> None:
        nonlocal last
        conn = None
        while (began := clock()) < end:
            n = writer.sent
            writer.sent += 1
            key, value = writer.key(n), f"{n:08d}{PAYLOAD[8:]}"
            try:
                conn = conn or await asyncio.open_connection("127.0.0.1", writer.server.port)
                status, body = await asyncio.wait_for(
                    exchange(conn, writer.request(key, value)), 60.0)
            except Exception as error:  # counted; the next request reconnects
                if conn is not None:
                    conn[1].close()
                conn = None
                writer.uncertain.add(key)  # it may have been written
                errors[type(error).__name__] += 1
                await asyncio.sleep(0.01)
                continue
            ended = clock()
            ok = 200 <= status < 300
            if ok:  # acknowledged, warmup included: every one is checked
                writer.acked.setdefault(key, []).append((int(json.loads(body)["version"]),
                                                         value))
            if began >= start:  # answered after the warmup: measured
                statuses[str(status)] += 1
                if ok:
                    latencies.append(ended - began)
                    by_group[writer.group] += 1
                    by_server[writer.server.name] += 1
                last = max(last, ended)
        if conn is not None:
            conn[1].close()

    def sample() -> tuple[list[CpuSample], tuple[int, int]]:
        return ([CpuSample.take(server.pid, server.pg) for server in servers],
                pg_counters(servers[0]))

    async def window() -> None:  # the CPU of the measured window (asking PostgreSQL for
        await asyncio.sleep(max(0.0, start - clock()))  # its backends: in a thread)
        load_cpu.append(time.process_time())
        samples.append(await asyncio.get_running_loop().run_in_executor(None, sample))

    await asyncio.gather(window(), *(write(writer) for writer in writers))
    samples.append(sample())
    load_cpu.append(time.process_time())
    (first, counted), (final, counted_end) = samples
    cpu = cpu_of(first, final)
    wall = final[0].at - first[0].at
    rate = len(latencies) / (last - start)
    return {"acknowledged": len(latencies), "ops_per_s": rate,
            "p50_ms": percentile(latencies, 50) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000,
            "max_ms": max(latencies, default=nan) * 1000,
            "statuses": dict(statuses), "errors": dict(+errors),
            "acknowledged_by_group": dict(sorted(by_group.items())),
            "acknowledged_by_server": dict(sorted(by_server.items())), **cpu,
            "load_cpu_pct": (load_cpu[1] - load_cpu[0]) / wall * 100 if wall > 0 else 0.0,
            "server_cpu_ms_per_write": cpu.get("server_cpu_pct", nan) * 10 / rate,
            # the whole database's and server's, as PostgreSQL reports them (its counters
            # are flushed about once a second): approximate, and other clients count too
            "pg_commits_per_s": (counted_end[0] - counted[0]) / wall if wall > 0 else nan,
            "pg_wal_syncs_per_s": (counted_end[1] - counted[1]) / wall if wall > 0 else nan,
            "loadavg_after": os.getloadavg()}


def pg_counters(server: Server) -> tuple[int, int]:
    """The database's committed transactions and the server's WAL syncs so far."""
    assert server.pg is not None
    try:
        with psycopg.connect(server.pg[0], autocommit=True, connect_timeout=5) as conn:
            row = conn.execute("SELECT (SELECT xact_commit FROM pg_stat_database WHERE"
                               " datname = current_database()), (SELECT wal_sync FROM"
                               " pg_stat_wal)").fetchone()
    except psycopg.Error:
        return 0, 0
    return (int(row[0]), int(row[1])) if row else (0, 0)


def measure(servers: list[Server], writers: list[Writer], duration: float
            ) -> dict[str, Any]:
    # uvloop (uvicorn[standard] brings it), as _loadgen.py: the load shares two cores
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(writes(servers, writers, duration, warmup=1.0))


# ---- setting up and checking a run ------------------------------------------------------


def open_tenants(servers: list[Server], groups: int, bootstrap: str, names: dict[str, str]
                 ) -> list[Writer]:
    """Opens the tenants as the admin, through the first server; a writer token each. Writer
    ``n`` writes to server ``(n // groups) % len(servers)`` (each server as many writers
    of each group)."""
    writers = []
    with httpx.Client(base_url=servers[0].base_url, timeout=60.0,
                      headers={"Authorization": f"Bearer {bootstrap}"}) as admin:
        for n, (tenant, group) in enumerate(names.items()):
            admin.post("/v1/tenants", json={"tenant": tenant}).raise_for_status()
            token = admin.post(f"/v1/tenants/{tenant}/tokens", json={"role": "writer"}
                               ).raise_for_status().json()["token"]
            writers.append(Writer(n, tenant, group, token,
                                  servers[(n // groups) % len(servers)]))
    return writers


def check(servers: list[Server], writers: list[Writer]) -> dict[str, Any]:
    """Every acknowledged write is there: each key's versions are the acknowledged ones
    (1..current; with a write left unanswered, a superset of them), and its current
    value is the last acknowledged (read through the writer's server, every server's
    views caught up first)."""
    for server in servers:
        wait_views(server)
    bad: list[str] = []
    acknowledged = stored = 0
    for writer in writers:
        with httpx.Client(base_url=f"{writer.server.base_url}/v1/tenants/{writer.tenant}/secrets",
                          timeout=60.0, headers={"Authorization": f"Bearer {writer.token}"}
                          ) as client:
            for key, acked in writer.acked.items():
                versions = [version for version, _ in acked]
                acknowledged += len(versions)
                listed = client.get(f"/{key}/versions")
                latest = client.get(f"/{key}")
                if listed.status_code != 200 or latest.status_code != 200:
                    bad.append(f"{writer.tenant}/{key}: {listed.status_code}"
                               f" {latest.status_code}")
                    continue
                current = int(listed.json()["current_version"])
                items = sorted(int(item["version"]) for item in listed.json()["items"])
                stored += current
                every = list(range(1, current + 1))
                exact = sorted(versions) == every if key not in writer.uncertain else (
                    len(set(versions)) == len(versions) and set(versions) <= set(every))
                value = latest.json()
                last_version, last_value = max(acked)
                if not exact or items != every or value["version"] != current or (
                        key not in writer.uncertain
                        and (last_version != current or value["value"] != last_value)):
                    bad.append(f"{writer.tenant}/{key}: acknowledged {len(versions)}"
                               f" (last {last_version}), current {current}, listed"
                               f" {len(items)}, read version {value['version']}")
    keys = sum(len(writer.acked) for writer in writers)
    return {"ok": not bad, "acknowledged": acknowledged, "sum_of_current_versions": stored,
            "keys": keys, "keys_unanswered": sum(len(w.uncertain) for w in writers),
            "bad_keys": bad[:20]}


def one_run(config: Configuration, rep: int, duration: float, count: int
            ) -> dict[str, Any]:
    servers = config.servers(count)
    try:
        for server in servers:  # one after the other: the first makes the schemas
            server.start("/healthz")
        names = config.tenant_names(rep)
        writers = open_tenants(servers, len(config.groups), config.bootstrap, names)
        for server in servers:  # the tenants and tokens known to every server
            wait_views(server)
        placed = config.directory(list(names))
        misplaced = {t: g for t, g in names.items() if placed.get(t) != g}
        run = measure(servers, writers, duration)
        run["check"] = check(servers, writers)
        run["writers_by_server"] = {
            server.name: dict(sorted(Counter(w.group for w in writers
                                             if w.server is server).items()))
            for server in servers}
        run["tenants_by_group"] = dict(Counter(placed.values()))
        run["misplaced_tenants"] = misplaced
        run["check"]["ok"] = run["check"]["ok"] and not misplaced
    except BaseException:
        for server in servers:
            console.print(f"{config.label}, rep {rep + 1}: {server.name}'s log ends\n"
                          f"{server.log_tail(60)}", markup=False, highlight=False)
        raise
    finally:
        codes = [server.stop() for server in servers]
    run["server_exit"] = codes
    return run


def measured(space: Workspace, reps: int, duration: float, count: int
             ) -> dict[str, list[dict[str, Any]]]:
    master_key, bootstrap = new_master_key(), new_bootstrap_token()
    configs = {label: Configuration(space, label, groups, master_key, bootstrap)
               for label, groups in CONFIGS.items()}
    runs: dict[str, list[dict[str, Any]]] = {label: [] for label in CONFIGS}
    for rep in range(reps):
        for label, config in configs.items():  # interleaved: the machine drifts
            run = one_run(config, rep, duration, count)
            runs[label].append(run)
            console.print(
                f"rep {rep + 1} {label:<9} {fmt(run['ops_per_s']):>6} writes/s  p50"
                f" {fmt(run['p50_ms'], 1)} ms  p99 {fmt(run['p99_ms'], 1)} ms  server CPU"
                f" {fmt(run['server_cpu_pct'])}%  postgres {fmt(run['postgres_cpu_pct'])}%"
                f"  machine {fmt(run['machine_busy_pct'])}%  server CPU/write"
                f" {fmt(run['server_cpu_ms_per_write'], 2)} ms  PostgreSQL commits/s"
                f" {fmt(run['pg_commits_per_s'])}"
                + (f"  each server CPU {[round(x) for x in run['server_cpu_pct_each']]}%"
                   if count > 1 else "")
                + f"  by group"
                f" {run['acknowledged_by_group']}  statuses {run['statuses']}"
                + (f"  errors {run['errors']}" if run["errors"] else "")
                + f"  check {'ok' if run['check']['ok'] else 'FAILED'}"
                + (f" {run['check']['bad_keys']}" if not run["check"]["ok"] else ""),
                markup=False, highlight=False)
    return runs


@contextmanager
def standby_pair(base_port: int) -> Iterator[Any]:
    from _pgaf import AutoFailoverPair

    with AutoFailoverPair(base_port, (base_port + 1, base_port + 2)) as pair:
        primary = pair.primary()
        assert primary is not None, "no primary"
        dsn = f"host=127.0.0.1 port={primary.port} dbname={pair.dbname} user=postgres"
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute("SHOW synchronous_standby_names").fetchone()
        console.print(f"pair up: primary {primary.name}, synchronous_standby_names ="
                      f" '{row[0] if row else ''}'", markup=False)
        yield pair


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 repetition of 3 s")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each figure")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--standby", action="store_true",
                        help="on a pg_auto_failover pair with a synchronous standby")
    parser.add_argument("--base-port", type=int, default=57460,
                        help="--standby: the monitor's port; the nodes take the next two")
    parser.add_argument("--servers", type=int, default=1,
                        help="serve processes side by side on the same storage (writers"
                             " spread evenly over them)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default results/)")
    args = parser.parse_args()
    if not 1 <= args.servers <= WRITERS:
        parser.error(f"--servers must be 1..{WRITERS}")
    duration = 3.0 if args.quick else args.duration
    reps = 1 if args.quick else args.reps
    console.print(f"[bold]{NAME}[/bold]: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; load"
                  f" average {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {duration:g} s"
                  f" x {reps}; {args.servers} serve process{'es' if args.servers > 1 else ''}"
                  f"{'; on a pg_auto_failover pair' if args.standby else ''}")
    with workspace("postgres") as space, (
            standby_pair(args.base_port) if args.standby else nullcontext()) as pair:
        if pair is not None:  # the schemas go with the pair (dropped there, then not here)
            space.url = pair.url
        version = pg_version(space.url)
        console.print(f"PostgreSQL {version}", markup=False)
        try:
            runs = measured(space, reps, duration, args.servers)
        finally:
            if pair is not None:
                for schema in space.schemas:
                    try:
                        drop_schema(space.url, schema)
                    except psycopg.Error as error:
                        console.print(f"could not drop schema {schema}: {error}", markup=False)
                space.schemas.clear()

    summary = {label: {name: median([run[name] for run in runs[label]]) for name in METRICS}
               for label in CONFIGS}
    base = summary[BASELINE]
    for row in summary.values():
        row["writes_ratio"] = ratio(row["ops_per_s"], base["ops_per_s"])
        row["p50_ratio"] = ratio(row["p50_ms"], base["p50_ms"])
        row["p99_ratio"] = ratio(row["p99_ms"], base["p99_ms"])
    checks = {label: all(run["check"]["ok"] for run in runs[label]) for label in CONFIGS}
    where = "a pg_auto_failover pair (synchronous standby)" if args.standby else "one server"
    serves = f"{args.servers} serve process{'es' if args.servers > 1 else ''}"
    print_table(f"Writes with tenant groups ({WRITERS} writers, {WRITERS} tenants spread evenly,"
                f" {serves}, PostgreSQL {version} on {where}, {duration:g} s x {reps}; ratios"
                f" against {BASELINE})",
                ["configuration", "writes/s", f"x {BASELINE}", "each run", "p50 ms",
                 f"p50 x {BASELINE}", "p99 ms", f"p99 x {BASELINE}", "checks"],
                [[label, fmt(row["ops_per_s"]), fmt_ratio(row["writes_ratio"]),
                  " / ".join(fmt(run["ops_per_s"]) for run in runs[label]),
                  fmt(row["p50_ms"], 1), fmt_ratio(row["p50_ratio"]), fmt(row["p99_ms"], 1),
                  fmt_ratio(row["p99_ratio"]), "ok" if checks[label] else "FAILED"]
                 for label, row in summary.items()])
    print_table("CPU over the measured windows (medians; % of one core, machine: of all"
                f" {os.cpu_count()}; servers: the sum over the {serves})",
                ["configuration", "servers %", "servers ms/write", "their postgres backends %",
                 "load %", "machine busy %", "PostgreSQL commits/s"],
                [[label, fmt(row["server_cpu_pct"]), fmt(row["server_cpu_ms_per_write"], 2),
                  fmt(row["postgres_cpu_pct"]), fmt(row["load_cpu_pct"]),
                  fmt(row["machine_busy_pct"]), fmt(row["pg_commits_per_s"])]
                 for label, row in summary.items()])
    target, goal = TARGET
    got = summary[target]["writes_ratio"]
    console.print(f"{target} / {BASELINE} writes/s: {fmt_ratio(got)} (target >= {goal}):"
                  f" {'met' if got >= goal else 'not met'}")
    failed = [(label, n) for label in CONFIGS for n, run in enumerate(runs[label], 1)
              if run["errors"] or set(run["statuses"]) - {"200", "201"}]
    console.print(f"every acknowledged write read back: {all(checks.values())}; runs with"
                  f" errors or non-2xx answers: {failed or 'none'}")
    ok = all(checks.values()) and not failed
    write_json(NAME + ("_standby" if args.standby else ""), {
        "config": {"writers": WRITERS, "tenants": WRITERS, "keys_per_writer": KEYS,
                   "payload_bytes": len(PAYLOAD), "duration_s": duration, "warmup_s": 1.0,
                   "reps": reps, "quick": args.quick, "standby": args.standby,
                   "servers": args.servers,
                   "writer_to_server": "writer i -> server (i // groups) % servers",
                   "postgres": version, "configurations": CONFIGS},
        "baseline": BASELINE, "runs": runs, "summary": summary, "checks": checks,
        "target": {"configuration": target, "writes_ratio_at_least": goal, "ratio": got,
                   "met": got >= goal},
        "ok": ok}, args.out)
    return verdict(ok)


if __name__ == "__main__":
    run_benchmark(main)
