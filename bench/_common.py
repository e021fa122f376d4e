"""Shared plumbing of the benchmark scripts (not a benchmark itself).

Each script in ``bench/`` measures one figure of SPEC section 8 against baselines
measured in the same run, repeats every figure (3 times by default), reports the
median, prints a table and writes ``bench/results/<name>.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:  # run as `python bench/<name>.py` from a checkout
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

console = Console(width=None if sys.stdout.isatty() else 150)
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
PAYLOAD = "x" * 300  # the 300-byte value every figure writes


def verdict(ok: bool) -> int:
    """The exit status of a benchmark: 1 when a correctness check failed."""
    if not ok:
        console.print("[red bold]correctness check FAILED[/red bold]")
        return 1
    return 0


def run_benchmark(main: Callable[[], int]) -> None:
    """Runs a benchmark's main, prints how long it took, exits with its status."""
    began = time.perf_counter()
    code = main()
    console.print(f"[dim]{time.perf_counter() - began:.0f} s[/dim]")
    sys.exit(code)


def database_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small and short: a smoke run")
    parser.add_argument("--backend", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--reps", type=int, default=3, help="repetitions of each figure")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default results/)")
    return parser


# ---- statistics -------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values; NaN when empty."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    clean = [v for v in values if not math.isnan(v)]
    return statistics.median(clean) if clean else math.nan


def ratio(a: float, b: float) -> float:
    return a / b if b else math.nan


def fmt(value: float, digits: int = 0) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.{digits}f}"


def fmt_ratio(value: float) -> str:
    if math.isnan(value):
        return "-"
    return f"{value:.3f}" if value < 10 else f"{value:,.1f}"


# ---- output -----------------------------------------------------------------------------


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]],
                caption: str | None = None) -> None:
    table = Table(title=title, caption=caption, show_lines=False)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)


LEDGER_SOURCES = ("domain", "core", "adapters", "projections", "api", "secrets_ledger")
"""The folders of the ledger's code (the digest in every result names what was measured)."""


def environment() -> dict[str, Any]:
    """What the numbers were measured on: they mean nothing without it."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "loadavg_at_start": os.getloadavg(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "argv": sys.argv,
    }
    try:
        import eventsourcing

        info["eventsourcing"] = getattr(eventsourcing, "__version__", "?")
    except ImportError:  # pragma: no cover
        pass
    try:
        info["git_head"] = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, check=False,
        ).stdout.strip()
        info["git_dirty"] = bool(subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", *LEDGER_SOURCES],
            capture_output=True, text=True, check=False,
        ).stdout.strip())
    except OSError:  # pragma: no cover
        pass
    # The code measured, even when uncommitted: a digest of the ledger's sources.
    digest = hashlib.sha256()
    for folder in LEDGER_SOURCES:
        for path in sorted((ROOT / folder).rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    info["source_sha256"] = digest.hexdigest()[:16]
    return info


def write_json(name: str, data: dict[str, Any], out: Path | None) -> Path:
    path = out or HERE / "results" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"benchmark": name, "environment": environment(), **data}

    def clean(value: Any) -> Any:
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value]
        return value

    path.write_text(json.dumps(clean(data), indent=2) + "\n")
    console.print(f"[dim]wrote {path}[/dim]")
    return path


# ---- PostgreSQL and the ledger ----------------------------------------------------------


def schema_name(prefix: str) -> str:
    return f"bench_{prefix}_{os.getpid()}"


def pg_version(url: str) -> str:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


def create_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')


def drop_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@dataclass
class Workspace:
    """A temporary data directory and the PostgreSQL schemas a run created."""

    backend: str
    url: str
    data_dir: Path
    schemas: list[str] = field(default_factory=list)

    def schema(self, prefix: str) -> str:
        name = schema_name(prefix)
        self.schemas.append(name)
        if self.backend == "postgres":
            create_schema(self.url, name)
        return name


@contextmanager
def workspace(backend: str) -> Iterator[Workspace]:
    url = database_url()
    data_dir = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    space = Workspace(backend, url, data_dir)
    try:
        yield space
    finally:
        if backend == "postgres":
            for schema in space.schemas:
                try:
                    drop_schema(url, schema)
                except psycopg.Error as error:  # pragma: no cover
                    console.print(f"[red]could not drop schema {schema}: {error}[/red]")
        shutil.rmtree(data_dir, ignore_errors=True)


def open_runtime(space: Workspace, schema: str, *, follow: bool = True,
                 pool_size: int | None = None) -> Any:
    from secrets_ledger.core.settings import Settings
    from secrets_ledger.runtime import LedgerRuntime

    options: dict[str, Any] = {"data_dir": space.data_dir / schema}
    if space.backend == "postgres":
        options["database_url"] = space.url
        options["database_schema"] = schema
    if pool_size is not None:
        options["pool_size"] = pool_size
    return LedgerRuntime(Settings(**options), follow=follow)


def wait_for_views(rt: Any, timeout: float = 3600.0) -> float:
    """Blocks until every view has applied everything stored; returns the seconds waited."""
    started = time.perf_counter()
    target = rt.storage.event_source.max_position()
    if not rt.projector.wait_for(target, timeout):
        raise RuntimeError(f"views did not reach position {target} in {timeout} s")
    return time.perf_counter() - started


def events_table(space: Workspace, schema: str) -> str:
    return f'"{schema}".ledger_events' if space.backend == "postgres" else "stored_events"


class BlockingLedger:
    """The core's use cases for the bench's worker threads, as the admin the context
    names: each thread keeps one event loop (``asyncio.Runner``) and awaits one call at a
    time on it, as a front end's request would."""

    def __init__(self, ledger: Any) -> None:
        self.ledger = ledger
        self._local = threading.local()

    def _run(self, coroutine: Any) -> Any:
        import asyncio

        runner = getattr(self._local, "runner", None)
        if runner is None:
            runner = self._local.runner = asyncio.Runner()
        return runner.run(coroutine)

    @staticmethod
    def _caller(ctx: Any) -> tuple[Any, Any]:
        from secrets_ledger.core.principals import Principal
        from secrets_ledger.core.requests import RequestInfo

        return Principal(ctx.actor, "admin", None), RequestInfo(ctx.request_id)

    def open_tenant(self, name: str, ctx: Any) -> str:
        caller, request = self._caller(ctx)
        return str(self._run(self.ledger.tenants.open(caller, name, request)))

    def put_secret(self, name: str, key: str, value: Any, metadata: Any, precondition: Any,
                   ctx: Any) -> Any:
        caller, request = self._caller(ctx)
        return self._run(self.ledger.secrets.put(caller, name, key, value, metadata,
                                                 precondition, request))

    def write_secrets(self, name: str, changes: Any, values: Any, ctx: Any) -> Any:
        caller, request = self._caller(ctx)
        return self._run(self.ledger.secrets.write(caller, name, changes, values, request))

    def get_secret(self, name: str, key: str, ctx: Any) -> Any:
        caller, request = self._caller(ctx)
        return self._run(self.ledger.reads.value(caller, name, key, request))

    def list_versions(self, name: str, key: str) -> Any:
        from secrets_ledger.core.principals import Principal

        return self._run(self.ledger.reads.versions(Principal.operator(), name, key))

    def verify(self, name: str) -> Any:
        from secrets_ledger.core.principals import Principal

        return self._run(self.ledger.history.verify(Principal.operator(), name))


# ---- filling a store fast ---------------------------------------------------------------


class _FillSealer:
    """Seals values as the ledger does: a fresh data key per version, wrapped by the
    tenant key, the value bound to (tenant, key, version) as associated data."""

    def __init__(self, keys: Any, tenant_id: str, plaintext: bytes) -> None:
        self.keys = keys
        self.tenant_id = tenant_id
        self.plaintext = plaintext
        self.tenant_keys: dict[int, bytes] = {}
        self.new_keys: list[Any] = []

    def __call__(self, key: str, version: int, key_version: int) -> Any:
        from secrets_ledger.domain import crypto
        from secrets_ledger.domain.changes import SealedValue

        tenant_key = self.tenant_keys.get(key_version)
        if tenant_key is None:
            tenant_key = self.tenant_keys[key_version] = self.keys.sealing_key(
                self.tenant_id, key_version)
        data_key = self.keys.new_data_key(self.tenant_id, key_version, tenant_key)
        self.new_keys.append(data_key)
        from secrets_ledger.verifier import value_commitment

        aad = crypto.value_aad(self.tenant_id, key, version)
        sealed = crypto.seal(data_key.key, self.plaintext, aad)
        return SealedValue(crypto.to_text(sealed), data_key.dek_id, value_commitment(
            crypto.commitment_opening(data_key.key, aad), self.plaintext))


def create_filled_tenants(rt: Any, tenants: Sequence[str], events_per_tenant: int,
                          keys_per_tenant: int, *, events_per_transaction: int = 2000,
                          progress: Callable[[int], None] | None = None) -> int:
    """Opens the tenants and appends ``events_per_tenant`` events to each, fast.

    The events are the ones the ledger records: ``Tenant.open`` (after its tenant key
    is stored), then one-key ``Tenant.write`` events (a fresh data key per version,
    sealed values, chained hashes) cycling over ``keys_per_tenant`` keys. They are
    driven on the domain aggregate and the storage directly, bypassing the ledger's
    write path, so that thousands of events go into one transaction
    (``Application.save`` of several tenants is atomic; data keys are stored first).
    The ledger has never seen these tenants: its first command on one loads it from the
    store. Returns the number of events stored, ``Opened`` included.
    """
    from secrets_ledger.domain.changes import RequestContext, SetValue
    from secrets_ledger.domain.tenant import Tenant
    from secrets_ledger.domain.times import utc_now

    streams, keys = rt.storage.streams, rt.ledger.door.envelope
    ctx = RequestContext(actor="bench-fill", request_id="fill")
    plaintext = json.dumps(PAYLOAD).encode()
    secret_keys = [f"app/key-{k:04d}" for k in range(max(1, keys_per_tenant))]
    aggregates: dict[str, Any] = {}
    sealers: dict[str, _FillSealer] = {}
    stored = 0
    for i in range(0, len(tenants), 500):
        opened = [Tenant.open(name, ctx, utc_now()) for name in tenants[i:i + 500]]
        for tenant in opened:
            keys.create_tenant_key(str(tenant.id), tenant.key_version)
        streams.save(opened, [], [])  # with their leaves, as the writer saves
        for tenant in opened:
            aggregates[tenant.name] = tenant
            sealers[tenant.name] = _FillSealer(keys, str(tenant.id), plaintext)
        stored += len(opened)
        if progress is not None:
            progress(len(opened))
    remaining = dict.fromkeys(tenants, max(0, events_per_tenant - 1))
    per_tenant = max(1, min(max(remaining.values(), default=1), events_per_transaction))
    tenants_per_batch = max(1, events_per_transaction // per_tenant)
    while any(remaining.values()):
        group = [name for name in tenants if remaining[name]][:tenants_per_batch]
        new_keys: list[Any] = []
        batch = 0
        for name in group:
            tenant, sealer = aggregates[name], sealers[name]
            count = min(per_tenant, remaining[name])
            for _ in range(count):
                key = secret_keys[tenant.version % len(secret_keys)]
                tenant.write([SetValue(key)], sealer, ctx, utc_now())
            remaining[name] -= count
            batch += count
            new_keys.extend(sealer.new_keys)
            sealer.new_keys.clear()
        streams.save([aggregates[name] for name in group], [], new_keys)
        stored += batch
        if progress is not None:
            progress(batch)
    return stored


# ---- running timed workers --------------------------------------------------------------


@dataclass
class TimedRun:
    threads: int
    duration: float
    elapsed: float
    ok: int
    latencies: list[float]  # seconds, one per acknowledged operation
    errors: dict[str, int]

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else math.nan

    def summary(self) -> dict[str, Any]:
        return {
            "ops_per_s": self.rate,
            "acknowledged": self.ok,
            "elapsed_s": self.elapsed,
            "p50_ms": percentile(self.latencies, 50) * 1000,
            "p99_ms": percentile(self.latencies, 99) * 1000,
            "max_ms": max(self.latencies, default=math.nan) * 1000,
            "errors": self.errors,
        }


MAX_FAILURES = 1000


def _too_many_failures(errors: dict[str, int], error: Exception) -> bool:
    """Counts a failed operation by its type; True once a run has failed too often to go
    on measuring."""
    name = type(error).__name__
    errors[name] = errors.get(name, 0) + 1
    return sum(errors.values()) > MAX_FAILURES


def run_timed_async(tasks: int, duration: float,
                    op: Callable[[int, int], Coroutine[Any, Any, None]]) -> TimedRun:
    """``run_timed`` for a system awaited on an event loop (the ledger's core, as its HTTP
    front end calls it): ``tasks`` concurrent tasks on one loop, each awaiting
    ``op(task, n)`` in turn, for ``duration`` seconds."""
    import asyncio

    latencies: list[list[float]] = [[] for _ in range(tasks)]
    ends = [0.0] * tasks
    errors: dict[str, int] = {}
    clock = time.perf_counter

    async def worker(index: int, start: float) -> None:
        mine, n = latencies[index], 0
        while clock() < start + duration:
            began = clock()
            try:
                await op(index, n)
            except Exception as error:
                if _too_many_failures(errors, error):
                    break
            else:
                mine.append(clock() - began)
            n += 1
        ends[index] = clock()

    async def everyone() -> float:
        start = clock()
        await asyncio.gather(*(worker(i, start) for i in range(tasks)))
        return start

    start = asyncio.run(everyone())
    flat = [value for chunk in latencies for value in chunk]
    return TimedRun(tasks, duration, max(ends) - start, len(flat), flat, errors)


def run_timed(threads: int, duration: float, op: Callable[[int, int], None]) -> TimedRun:
    """Runs ``op(thread, n)`` in ``threads`` threads for ``duration`` seconds.

    Every call that returns counts as one acknowledged operation; the rate divides
    them by the time from the common start until the last call returned.
    """
    barrier = threading.Barrier(threads + 1)
    latencies: list[list[float]] = [[] for _ in range(threads)]
    ends = [0.0] * threads
    errors: dict[str, int] = {}
    guard = threading.Lock()
    start_box: list[float] = []

    def worker(index: int) -> None:
        mine = latencies[index]
        barrier.wait()
        deadline = start_box[0] + duration
        n = 0
        clock = time.perf_counter
        while clock() < deadline:
            began = clock()
            try:
                op(index, n)
            except Exception as error:
                with guard:
                    give_up = _too_many_failures(errors, error)
                if give_up:
                    break
            else:
                mine.append(clock() - began)
            n += 1
        ends[index] = clock()

    workers = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(threads)]
    for thread in workers:
        thread.start()
    start_box.append(time.perf_counter())
    barrier.wait()
    for thread in workers:
        thread.join()
    elapsed = max(ends) - start_box[0]
    flat = [value for chunk in latencies for value in chunk]
    return TimedRun(threads, duration, elapsed, len(flat), flat, errors)
