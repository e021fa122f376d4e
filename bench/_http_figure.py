"""The code of figure 2 (run it as ``python bench/http.py``; see that file's docstring)."""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from _common import (
    PAYLOAD,
    Workspace,
    base_parser,
    console,
    fmt,
    fmt_ratio,
    median,
    pg_version,
    print_table,
    ratio,
    verdict,
    workspace,
    write_json,
)
from _servers import (
    HERE,
    Server,
    console_script,
    free_port,
    ledger_server,
    new_bootstrap_token,
    new_master_key,
    run_loadgen,
    thread_names,
    wait_views,
)

NAME = "http"
OPS = ("GET", "PUT")
TARGETS = ("ledger", "bare", "bare-async", "moto")
BEFORE = "ledger-before"  # --compare-with: an earlier build, measured like "ledger"
CONCURRENCY = 16
TENANT = "bench"
READ_KEY = "bench/read"
WRITE_KEY = "bench/write"
SECRET_ID = "bench"  # noqa: S105 - a name, not a secret
# moto accepts any signature; the credential scope names the region and service.
AWS_AUTH = ("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240101/us-east-1/"
            "secretsmanager/aws4_request, SignedHeaders=content-type;host;x-amz-date;"
            "x-amz-target, Signature=" + "0" * 64)
TARGET_RATIOS = {"GET": 0.5, "PUT": 0.3}  # ledger / bare, requests per second
METRICS = ("ops_per_s", "p50_ms", "p99_ms", "server_cpu_pct", "postgres_cpu_pct",
           "loadgen_cpu_pct", "machine_busy_pct")


def expect(response: httpx.Response, *statuses: int) -> httpx.Response:
    if response.status_code not in statuses:
        raise RuntimeError(f"{response.request.method} {response.request.url} answered "
                           f"{response.status_code}: {response.text[:500]}")
    return response


@dataclass
class Target:
    name: str
    server: Server
    # A failed check of a required target fails the run; moto's own 500s are reported
    # (and its rate counts only its 200s) but are moto's bugs, not the ledger's.
    required: bool = True
    requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    acknowledged: Counter[str] = field(default_factory=Counter)  # 2xx answers, all phases
    failed: Counter[str] = field(default_factory=Counter)  # other answers and errors
    body_bytes: dict[str, int] = field(default_factory=dict)

    def settle(self) -> float:
        return 0.0

    def account(self, op: str, result: dict[str, Any]) -> None:
        self.acknowledged[op] += int(result["acknowledged_total"])
        for phase in (result, result["warmup"]):
            self.failed[op] += sum(n for status, n in phase["statuses"].items()
                                   if not status.startswith("2"))
            self.failed[op] += sum(phase["errors"].values())

    def check(self) -> dict[str, Any]:
        ok = not any(self.failed.values())
        return {"ok": ok, "acknowledged": dict(self.acknowledged),
                "not_2xx_or_errors": dict(self.failed)}


class LedgerTarget(Target):
    def setup(self, admin_token: str) -> None:
        self.admin = {"Authorization": f"Bearer {admin_token}"}
        with httpx.Client(base_url=self.server.base_url, timeout=60.0) as client:
            expect(client.post("/v1/tenants", json={"tenant": TENANT}, headers=self.admin),
                   201)
            token = expect(client.post(f"/v1/tenants/{TENANT}/tokens",
                                       json={"role": "writer"}, headers=self.admin),
                           201).json()["token"]
            auth = {"Authorization": f"Bearer {token}"}
            put = {**auth, "Content-Type": "application/json"}
            body = json.dumps({"value": PAYLOAD})
            base = f"/v1/tenants/{TENANT}/secrets/"
            expect(client.put(base + READ_KEY, content=body, headers=put), 201)
            written = expect(client.put(base + WRITE_KEY, content=body, headers=put), 201)
            self.acknowledged["PUT"] += 1
            read = expect(client.get(base + READ_KEY, headers=auth), 200)
            self.acknowledged["GET"] += 1
            if read.json()["value"] != PAYLOAD:
                raise RuntimeError("the ledger answered another value")
        self.body_bytes = {"GET": len(read.content), "PUT": len(written.content)}
        self.requests = {
            "GET": {"method": "GET", "path": base + READ_KEY, "headers": auth},
            "PUT": {"method": "PUT", "path": base + WRITE_KEY, "headers": put, "body": body},
        }

    def settle(self) -> float:
        return wait_views(self.server)

    def check(self) -> dict[str, Any]:
        out = super().check()
        wait_views(self.server)
        with httpx.Client(base_url=self.server.base_url, timeout=120.0) as client:
            versions = expect(client.get(
                f"/v1/tenants/{TENANT}/secrets/{WRITE_KEY}/versions", headers=self.admin),
                200).json()
            reads: Counter[str] = Counter()
            cursor = None
            while True:
                params = {"action": "read", "limit": "1000"}
                if cursor is not None:
                    params["cursor"] = cursor
                page = expect(client.get(f"/v1/tenants/{TENANT}/audit", params=params,
                                         headers=self.admin), 200).json()
                reads.update(item["key"] for item in page["items"])
                cursor = page.get("next_cursor")
                if not cursor:
                    break
        puts, gets = self.acknowledged["PUT"], self.acknowledged["GET"]
        out.update({
            "acknowledged_puts": puts,
            "versions_of_written_key": len(versions["items"]),
            "current_version": versions["current_version"],
            "acknowledged_gets": gets,
            "audit_read_rows": sum(reads.values()),
            "audit_read_rows_of_read_key": reads[READ_KEY],
        })
        out["ok"] = bool(out["ok"] and len(versions["items"]) == puts
                         and versions["current_version"] == puts
                         and sum(reads.values()) == reads[READ_KEY] == gets)
        return out


class BareTarget(Target):
    def setup(self, like: Target) -> None:
        self.requests = like.requests
        with httpx.Client(base_url=self.server.base_url, timeout=30.0) as client:
            got = expect(client.get(self.requests["GET"]["path"],
                                    headers=self.requests["GET"]["headers"]), 200)
            put = expect(client.put(self.requests["PUT"]["path"],
                                    content=self.requests["PUT"]["body"],
                                    headers=self.requests["PUT"]["headers"]), 200)
        self.body_bytes = {"GET": len(got.content), "PUT": len(put.content)}


class MotoTarget(Target):
    def setup(self) -> None:
        def request(action: str, body: dict[str, Any]) -> dict[str, Any]:
            return {"method": "POST", "path": "/", "body": json.dumps(body), "headers": {
                "X-Amz-Target": f"secretsmanager.{action}",
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Date": "20240101T000000Z",
                "Authorization": AWS_AUTH,
            }}

        self.requests = {
            "GET": request("GetSecretValue", {"SecretId": SECRET_ID}),
            "PUT": request("PutSecretValue", {"SecretId": SECRET_ID, "SecretString": PAYLOAD}),
        }
        create = request("CreateSecret", {"Name": SECRET_ID, "SecretString": PAYLOAD})
        with httpx.Client(base_url=self.server.base_url, timeout=30.0) as client:
            expect(client.post("/", content=create["body"], headers=create["headers"]), 200)
            put = self._send(client, "PUT")
            got = self._send(client, "GET")
        if got.json()["SecretString"] != PAYLOAD:
            raise RuntimeError("moto answered another value")
        self.body_bytes = {"GET": len(got.content), "PUT": len(put.content)}

    def _send(self, client: httpx.Client, op: str) -> httpx.Response:
        spec = self.requests[op]
        return expect(client.post("/", content=spec["body"], headers=spec["headers"]), 200)

    def check(self) -> dict[str, Any]:
        out = super().check()
        with httpx.Client(base_url=self.server.base_url, timeout=30.0) as client:
            value = self._send(client, "GET").json()["SecretString"]
        out["holds_value"] = value == PAYLOAD
        out["ok"] = bool(out["ok"] and out["holds_value"])
        if any(self.failed.values()):
            # Its own exceptions, from its log: moto's models are not thread-safe, and
            # moto_server serves each request in a thread.
            causes: Counter[str] = Counter()
            lines = self.server.log_path.read_text(errors="replace").splitlines()
            for before, line in itertools.pairwise(lines):
                if before.startswith("  ") and not line.startswith((" ", "Traceback")) \
                        and ("Error" in line or "Exception" in line):
                    causes[line.strip()[:200]] += 1
            out["server_exceptions_in_log"] = dict(causes)
        return out


# ---- profiling --------------------------------------------------------------------------


PROFILE_MODES = {
    # No sampler attached: CPU of each server thread from /proc (names from py-spy dump).
    "threads": [],
    # Only the thread holding the GIL: where the Python CPU time goes.
    "cpu": ["--gil"],
    # Every thread that is not idle (py-spy's judgement): where a request's time goes,
    # waiting included.
    "wall": ["--nonblocking"],
}


def profile_run(target: Target, op: str, spec: dict[str, Any], out_dir: Path,
                seconds: float, mode: str) -> dict[str, Any]:
    """One extra measurement (not in the figure) under ``py-spy record``; its collapsed
    stacks go to ``out_dir`` and a summary into the JSON."""
    if mode == "threads":
        return thread_cpu_run(target, op, spec)
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / f"ledger-{op}-{mode}.txt"
    spy = subprocess.Popen(
        [console_script("py-spy"), "record", "--pid", str(target.server.pid), "--format",
         "raw", "--output", str(raw), "--duration", str(math.ceil(seconds)), "--rate", "100",
         "--threads", *PROFILE_MODES[mode]],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # py-spy attaches
    result = run_loadgen(spec, target.server)
    target.account(op, result)
    _, err = spy.communicate(timeout=120)
    result.pop("bodies", None)
    summary: dict[str, Any] = {"file": str(raw), "mode": mode, "seconds": math.ceil(seconds),
                               "rate_hz": 100, "run": result}
    if raw.exists():
        stacks = read_stacks(raw)
        summary.update(summarize_cpu(stacks) if mode == "cpu" else summarize_wall(stacks))
    else:
        summary["error"] = err[-2000:]
    return summary


def thread_cpu_run(target: Target, op: str, spec: dict[str, Any]) -> dict[str, Any]:
    """CPU of each server thread over a measured window, summed by the thread's role."""
    result = run_loadgen(spec, target.server, per_thread=True)
    target.account(op, result)
    result.pop("bodies", None)
    names = thread_names(target.server.pid)
    by_tid = result.pop("thread_cpu_pct", {})
    roles: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for tid, pct in by_tid.items():
        role = thread_role_of(names.get(int(tid), "?"))
        roles[role] += pct
        counts[role] += pct > 0.5
    served = result["ops_per_s"]
    return {"mode": "threads", "run": result, "thread_names_found": len(names),
            "role_cpu_pct": dict(roles.most_common()),
            "role_busy_threads": dict(counts),
            "role_cpu_ms_per_request": {k: v / 100 * 1000 / served
                                        for k, v in roles.most_common()} if served else {}}


def read_stacks(path: Path) -> list[tuple[list[str], int]]:
    """py-spy's raw (collapsed) output: one ``frame;frame;... count`` line per stack."""
    out = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if stack and count.isdigit():
            out.append((stack.split(";"), int(count)))
    return out


def thread_role(frames: list[str]) -> str:
    name = frames[0].partition("): ")[2] if frames and frames[0].startswith("thread (") else ""
    return thread_role_of(name)


def thread_role_of(name: str) -> str:
    if name == "MainThread":
        return "event loop (uvicorn, middleware, FastAPI)"
    if name.startswith("AnyIO worker"):
        return "request threads (sync dependencies and routes)"
    if name == "ledger-writer":
        return "group-commit writer"
    if name == "projector":
        return "projector"
    if "pool" in name.lower():
        return "connection pool"
    return name or "?"


# Libraries, tested from the leaf upwards: the first frame that matches names the bucket.
BUCKETS = (
    ("psycopg / psycopg_pool / sqlite3", ("psycopg", "sqlite3")),
    ("crypto (AES-GCM, key store)", ("cryptography", "crypto.py", "envelope.py")),
    ("eventsourcing (save, mapper, repository)", ("eventsourcing/",)),
    ("pydantic", ("pydantic",)),
    ("json", ("json/",)),
    ("prometheus_client", ("prometheus_client",)),
    ("ledger code (core, domain, adapters, projections)", ("core/", "domain/", "adapters/",
                                                           "projections/")),
    ("ledger api code (routes, deps, middleware)", ("api/",)),
    ("fastapi / starlette", ("fastapi/", "starlette/")),
    ("anyio (thread pool hand-offs)", ("anyio/",)),
    ("uvicorn / httptools / asyncio", ("uvicorn/", "httptools", "h11/", "asyncio/", "uvloop",
                                       "selectors.py")),
    ("threading / queue", ("threading.py", "queue.py", "concurrent/")),
)
PROJECT = ("core/", "domain/", "adapters/", "api/", "projections/")


def _shares(counter: Counter[str], total: int, top: int = 20) -> dict[str, float]:
    return {k: v / total * 100 for k, v in counter.most_common(top)} if total else {}


def summarize_cpu(stacks: list[tuple[list[str], int]]) -> dict[str, Any]:
    """GIL-holder samples by thread role and by library (leaf-most match)."""
    buckets: Counter[str] = Counter()
    roles: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for frames, count in stacks:
        total += count
        roles[thread_role(frames)] += count
        leaves[frames[-1]] += count
        bucket = next((name for frame in reversed(frames) for name, marks in BUCKETS
                       if any(mark in frame for mark in marks)), "other")
        buckets[bucket] += count
    return {"samples": total, "bucket_pct": _shares(buckets, total),
            "thread_pct": _shares(roles, total), "top_leaves_pct": _shares(leaves, total, 15)}


def _function(frame: str) -> str:
    return frame.split(" (", 1)[0]


def _state(frames: list[str]) -> str:
    leaf = frames[-1]
    if "psycopg_pool" in ";".join(frames[-6:]) and "wait" in leaf.lower():
        return "pool"
    if leaf.startswith("Connection.wait (psycopg") or leaf.startswith("connect ("):
        return "postgres"
    if any(leaf.startswith(name) for name in ("Condition.wait", "Event.wait", "Queue.get",
                                              "Lock.acquire", "Semaphore.acquire")):
        return "thread"
    return "running"


STATES = {"postgres": "waiting for PostgreSQL", "pool": "waiting for a pooled connection",
          "thread": "waiting for another thread (writer, projector)",
          "running": "running (or waiting for the GIL)"}


def summarize_wall(stacks: list[tuple[list[str], int]]) -> dict[str, Any]:
    """Request-thread samples (work, not idle workers) by the innermost ledger function
    on the stack and by what the thread was doing there."""
    steps: dict[str, Counter[str]] = {}
    states: Counter[str] = Counter()
    roles: Counter[str] = Counter()
    total_all = total = 0
    for frames, count in stacks:
        total_all += count
        roles[thread_role(frames)] += count
        if not frames[0].partition("): ")[2].startswith("AnyIO worker"):
            continue
        project = [f for f in frames if any(mark in f for mark in PROJECT)
                   and "sql/database.py" not in f]
        if not project:
            continue  # a worker waiting for work
        total += count
        state = _state(frames)
        states[state] += count
        steps.setdefault(_function(project[-1]), Counter())[state] += count
    ordered = sorted(steps.items(), key=lambda item: -sum(item[1].values()))
    return {
        "samples": total_all, "request_thread_samples": total,
        "thread_pct": _shares(roles, total_all),
        "state_pct": {STATES[k]: v / total * 100 for k, v in states.most_common()}
        if total else {},
        "step_pct": {name: {"total": sum(c.values()) / total * 100,
                            **{k: c[k] / total * 100 for k in STATES}}
                     for name, c in ordered[:15]} if total else {},
    }


# ---- the run ----------------------------------------------------------------------------


def start_ledger(space: Workspace, name: str, cli: str | None = None) -> LedgerTarget:
    """A ledger server on storage of its own (schema, data directory), set up over HTTP."""
    bootstrap = new_bootstrap_token()
    schema = (space.schema(f"http_{name}".replace("-", "_")) if space.backend == "postgres"
              else None)
    server = ledger_server(space.data_dir / "servers", database_url=space.url if schema else None,
                           schema=schema, data_dir=space.data_dir / name,
                           master_key=new_master_key(), bootstrap_token=bootstrap, name=name,
                           cli=cli)
    target = LedgerTarget(name, server)
    server.start("/healthz")
    target.setup(bootstrap)
    return target


def installation(path: str) -> str:
    """``--compare-with``: an absolute path, since the servers run in a folder of their own;
    checked here so that a typo fails before the other targets are started."""
    found = os.path.abspath(path)
    if not (os.path.isfile(found) and os.access(found, os.X_OK)):
        raise argparse.ArgumentTypeError(f"{path} is not an executable file")
    return found


def ratios_against(of_op: dict[str, dict[str, float]], who: str,
                   bases: tuple[str, ...]) -> dict[str, float]:
    """``who``'s req/s, p50 and p99 as multiples of each base's (the medians of one op)."""
    out: dict[str, float] = {}
    for base in bases:
        for metric, label in (("ops_per_s", "req/s"), ("p50_ms", "p50"), ("p99_ms", "p99")):
            out[f"{who}/{base} {label}"] = ratio(of_op[who][metric], of_op[base][metric])
    return out


def start_targets(space: Workspace, names: tuple[str, ...],
                  compare_with: str | None = None) -> dict[str, Target]:
    workdir = space.data_dir / "servers"
    targets: dict[str, Target] = {}
    ledger = targets["ledger"] = start_ledger(space, "ledger")
    if compare_with is not None:
        targets[BEFORE] = start_ledger(space, BEFORE, compare_with)
    sizes = ["--get-bytes", str(ledger.body_bytes["GET"]), "--put-bytes",
             str(ledger.body_bytes["PUT"])]
    for name in names:
        if name in ("bare", "bare-async"):
            port = free_port()
            argv = [sys.executable, str(HERE / "_bare_app.py"), "--port", str(port), *sizes]
            if name == "bare-async":
                argv.append("--async")
            bare = BareTarget(name, Server(name, argv, dict(os.environ), port,
                                           workdir))
            targets[name] = bare
            bare.server.start("/docs")
            bare.setup(ledger)
        elif name == "moto":
            port = free_port()
            argv = [console_script("moto_server"), "-H", "127.0.0.1", "-p", str(port)]
            moto = MotoTarget(name, Server(name, argv, dict(os.environ), port, workdir),
                              required=False)
            targets[name] = moto
            moto.server.start("/moto-api/")
            moto.setup()
    return {name: targets[name] for name in names if name in targets}


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=None,
                        help="seconds per measurement (default 5, --quick 2)")
    parser.add_argument("--warmup", type=float, default=None,
                        help="unmeasured seconds before each (default 1, --quick 0.5)")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY)
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw",
                        help="load generator's HTTP client")
    parser.add_argument("--targets", default=",".join(TARGETS),
                        help=f"comma-separated subset of {','.join(TARGETS)} (ledger always)")
    parser.add_argument("--compare-with", type=installation, default=None,
                        metavar="SECRETS_LEDGER",
                        help="another installation's secrets-ledger console script (an "
                             "earlier build), set up, measured and checked like the ledger, "
                             f"as the target {BEFORE!r}")
    parser.add_argument("--profile", type=Path, default=None,
                        help="after the measurements, one more GET and PUT run of the ledger "
                             "under py-spy; collapsed stacks and a summary go to this folder")
    args = parser.parse_args()
    duration = args.duration or (2.0 if args.quick else 5.0)
    warmup = args.warmup if args.warmup is not None else (0.5 if args.quick else 1.0)
    names = tuple(["ledger"] + ([BEFORE] if args.compare_with else [])
                  + [n for n in args.targets.split(",") if n in TARGETS and n != "ledger"])

    width = max(11, *(len(name) + 1 for name in names))
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        op: {name: [] for name in names} for op in OPS}
    profiles: dict[str, Any] = {}
    with workspace(args.backend) as space:
        console.print(f"[bold]{NAME}[/bold]: backend={args.backend} duration={duration}s "
                      f"warmup={warmup}s reps={args.reps} concurrency={args.concurrency} "
                      f"client={args.client} targets={','.join(names)}"
                      + (f" postgres={pg_version(space.url)}" if args.backend == "postgres"
                         else ""))
        targets: dict[str, Target] = {}
        try:
            targets = start_targets(space, names, args.compare_with)
            for rep in range(args.reps):
                for op in OPS:
                    order = list(names[rep % len(names):] + names[:rep % len(names)])
                    for name in order:
                        target = targets[name]
                        settle = target.settle()
                        spec = {"host": "127.0.0.1", "port": target.server.port,
                                **target.requests[op], "concurrency": args.concurrency,
                                "duration": duration, "warmup": warmup,
                                "client": args.client}
                        result = run_loadgen(spec, target.server)
                        target.account(op, result)
                        result["settle_s"] = settle
                        result.pop("bodies", None)
                        runs[op][name].append(result)
                        bad = {s: n for s, n in result["statuses"].items()
                               if not s.startswith("2")}
                        console.print(
                            f"rep {rep + 1} {op:<4}{name:<{width}}"
                            f"{result['ops_per_s']:9,.0f} req/s"
                            f"  p50 {result['p50_ms']:7.2f} ms  p99 {result['p99_ms']:7.2f} ms"
                            f"  cpu server {result.get('server_cpu_pct', 0):4.0f}%"
                            f" pg {result.get('postgres_cpu_pct', 0):4.0f}%"
                            f" load {result.get('loadgen_cpu_pct', 0):3.0f}%"
                            f" machine {result.get('machine_busy_pct', 0):3.0f}%"
                            + (f"  views caught up in {settle:.2f} s" if settle > 0.05 else "")
                            + (f"  [red]non-2xx {bad}[/red]" if bad else "")
                            + (f"  [red]errors {result['errors']}[/red]"
                               if result["errors"] else ""))
            if args.profile is not None:
                ledger = targets["ledger"]
                for op in OPS:
                    for mode in PROFILE_MODES:
                        ledger.settle()
                        spec = {"host": "127.0.0.1", "port": ledger.server.port,
                                **ledger.requests[op], "concurrency": args.concurrency,
                                "duration": duration, "warmup": warmup,
                                "client": args.client}
                        profiles[f"{op}-{mode}"] = profile_run(
                            ledger, op, spec, args.profile, warmup + duration + 1.0, mode)
            checks = {name: target.check() for name, target in targets.items()}
            required = {name: target.required for name, target in targets.items()}
        finally:
            for target in targets.values():
                code = target.server.stop()
                if code not in (0, None, -15):
                    console.print(f"[yellow]{target.name} exited with {code}[/yellow]\n"
                                  + target.server.log_tail(10))
        body_bytes = {name: target.body_bytes for name, target in targets.items()}

    # ---- report -------------------------------------------------------------------------
    medians: dict[str, dict[str, dict[str, float]]] = {}
    rows: list[list[str]] = []
    ratio_rows: list[list[str]] = []
    targets_met: dict[str, bool] = {}
    for op in OPS:
        medians[op] = {}
        for name in names:
            reps = runs[op][name]
            medians[op][name] = {m: median([float(r.get(m, math.nan) if r.get(m) is not None
                                                  else math.nan) for r in reps])
                                 for m in METRICS}
            m = medians[op][name]
            rows.append([
                op if name == names[0] else "", name, fmt(m["ops_per_s"]),
                " / ".join(fmt(r["ops_per_s"]) for r in reps),
                fmt(m["p50_ms"], 2), fmt(m["p99_ms"], 2),
                fmt(m["server_cpu_pct"]), fmt(m["postgres_cpu_pct"]),
                fmt(m["loadgen_cpu_pct"]), fmt(m["machine_busy_pct"]),
                str(body_bytes.get(name, {}).get(op, "-")),
            ])
        # The earlier build is one more baseline of the ledger (ledger/ledger-before) and
        # is itself measured against the others: both builds' distance to bare, one run.
        builds = ("ledger", BEFORE) if BEFORE in names else ("ledger",)
        baselines = tuple(name for name in names if name not in builds)
        pairs = [("ledger", base) for base in names[1:]]
        ratios = ratios_against(medians[op], "ledger", names[1:])
        if BEFORE in names:
            pairs += [(BEFORE, base) for base in baselines]
            ratios.update(ratios_against(medians[op], BEFORE, baselines))
        medians[op]["ratios"] = ratios
        if "bare" in names:
            targets_met[op] = ratios["ledger/bare req/s"] >= TARGET_RATIOS[op]
        for i, (who, base) in enumerate(pairs):
            key = f"{who}/{base}"
            goal = ""
            if base == "bare":  # the goal is the ledger's; the earlier build's is only shown
                met = ratios[f"{key} req/s"] >= TARGET_RATIOS[op]
                goal = f">= {TARGET_RATIOS[op]}: " + ("met" if met else "NOT met" if who == BEFORE
                                                      else "[red]NOT met[/red]")
            ratio_rows.append([op if i == 0 else "", key if len(builds) > 1 else base,
                               fmt_ratio(ratios[f"{key} req/s"]), goal,
                               fmt_ratio(ratios[f"{key} p50"]), fmt_ratio(ratios[f"{key} p99"])])

    print_table(
        f"Figure 2 - HTTP, {args.concurrency} keep-alive clients ({args.backend}, "
        f"{duration:g} s each after {warmup:g} s warm-up, median of {args.reps})",
        ["op", "target", "req/s", "each run", "p50 ms", "p99 ms", "server cpu%", "pg cpu%",
         "loadgen cpu%", "machine busy%", "resp bytes"], rows,
        caption="cpu% = % of one core while the window was open (pg: that ledger's own"
                " PostgreSQL backends); machine busy% = both cores, everything on the machine",
    )
    print_table(f"Figure 2 - {' and '.join(builds)} as multiples of each baseline (medians)"
                if len(builds) > 1 else
                "Figure 2 - the ledger as a multiple of each baseline (medians)",
                ["op", "baseline", "req/s ratio", "target", "p50 ratio", "p99 ratio"],
                ratio_rows)
    for key, prof in profiles.items():
        print_profile(key, prof)
    all_ok = all(check["ok"] for name, check in checks.items() if required[name])
    print_table("Correctness", ["target", "ok", "detail"], [
        [name, "yes" if check["ok"] else "[red]NO[/red]" if required[name]
         else "[yellow]NO (baseline's own errors: reported, not failing the run)[/yellow]",
         ", ".join(f"{k}={v}" for k, v in check.items() if k != "ok")]
        for name, check in checks.items()
    ])
    suffix = "" if args.backend == "postgres" else f"_{args.backend}"
    write_json(NAME + suffix, {
        "config": {"backend": args.backend, "duration_s": duration, "warmup_s": warmup,
                   "reps": args.reps, "concurrency": args.concurrency, "client": args.client,
                   "targets": names, "payload_bytes": len(PAYLOAD), "quick": args.quick,
                   "target_ratios_vs_bare": TARGET_RATIOS, "response_bytes": body_bytes,
                   "versions": versions(),
                   **({"compare_with": args.compare_with} if args.compare_with else {})},
        "runs": runs, "medians": medians, "targets_met": targets_met, "checks": checks,
        "profiles": profiles, "ok": all_ok,
        "baselines_ok": all(check["ok"] for check in checks.values()),
    }, args.out)
    return verdict(all_ok)


def print_profile(key: str, prof: dict[str, Any]) -> None:
    op, _, mode = key.partition("-")
    speed = (f"{prof['run']['ops_per_s']:,.0f} req/s, p50 {prof['run']['p50_ms']:.1f} ms "
             "while profiled")
    if "error" in prof:
        console.print(f"[red]py-spy failed for {key}: {prof['error']}[/red]")
    elif mode == "threads":
        run = prof["run"]
        print_table(
            f"Ledger {op}: CPU by server thread, no sampler attached ({speed}; process "
            f"{run['server_cpu_pct']:.0f}% of a core = user {run['server_user_pct']:.0f}% + "
            f"system {run['server_sys_pct']:.0f}%; its PostgreSQL backends "
            f"{run['postgres_cpu_pct']:.0f}%)",
            ["thread", "% of one core", "CPU ms per request", "threads busy"],
            [[role, fmt(pct, 1), fmt(prof["role_cpu_ms_per_request"].get(role, math.nan), 2),
              str(prof["role_busy_threads"].get(role, 0))]
             for role, pct in prof["role_cpu_pct"].items() if pct >= 0.05])
    elif mode == "cpu":
        held = prof["samples"] / (prof["seconds"] * prof["rate_hz"]) * 100
        print_table(
            f"Ledger {op}: Python CPU by library (py-spy --gil: {prof['samples']} samples, "
            f"the GIL held {held:.0f}% of the time; {speed})",
            ["library (leaf-most match)", "% of GIL samples"],
            [[k, fmt(v, 1)] for k, v in prof["bucket_pct"].items()])
        print_table(f"Ledger {op}: Python CPU by thread (py-spy --gil)",
                    ["thread", "% of GIL samples"],
                    [[k, fmt(v, 1)] for k, v in prof["thread_pct"].items()])
    else:
        print_table(
            f"Ledger {op}: where a request thread's time goes (py-spy, active threads: "
            f"{prof['request_thread_samples']} request-thread samples; {speed})",
            ["innermost ledger function", "total %", *STATES.values()],
            [[name, fmt(c["total"], 1), *(fmt(c[k], 1) for k in STATES)]
             for name, c in prof["step_pct"].items()],
            caption="% of the request threads' busy samples; "
                    + ", ".join(f"{k} {fmt(v, 1)}%" for k, v in prof["state_pct"].items()))


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for package in ("fastapi", "starlette", "uvicorn", "uvloop", "httptools", "pydantic",
                    "moto", "werkzeug", "flask", "httpx", "psycopg"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            out[package] = "-"
    return out


if __name__ == "__main__":  # pragma: no cover
    started = time.perf_counter()
    code = main()
    console.print(f"[dim]{time.perf_counter() - started:.0f} s[/dim]")
    sys.exit(code)
