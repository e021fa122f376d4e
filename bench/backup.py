"""Backup of a running SQLite store: how long ``secrets-ledger backup`` takes, against a bare
copy of the same files, and how long writers wait for it.

    python bench/backup.py [--quick] [--events N]

The store is filled fast (``_common.create_filled_tenants``: one-key write events of a
300-byte value). Each repetition then times, with one writer writing through the core
(``put_secret``, one call at a time) the whole while:

- bare copy: SQLite's online backup API of the two files into a fresh directory, no lock
  (what the ledger's backup does, without keeping writers out: not consistent);
- ledger backup: ``Storage.backup`` (``adapters.sqlite.backup``), as the command calls it;
- the writer's latencies during each copy and during as long a stretch with no copy: p50,
  p99, max (the max during the ledger's backup is the pause it costs writers).

Correctness: every copy passes ``PRAGMA integrity_check``; the ledger's copy holds every
event acknowledged before it began, and the same number of events as the store held
when its lock was taken (no event commits while it copies).
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import threading
import time
from pathlib import Path
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
    print_table,
    ratio,
    run_benchmark,
    verdict,
    workspace,
    write_json,
)

NAME = "backup"
FILES = ("events.sqlite", "ledger.sqlite")


def events_in(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return int(conn.execute("SELECT count(*) FROM stored_events").fetchone()[0])


def bare_copy(data_dir: Path, into: Path) -> None:
    into.mkdir()
    for name in FILES:
        source, target = sqlite3.connect(data_dir / name), sqlite3.connect(into / name)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()


class Writer:
    """Writes one key after another through the core, timing each write."""

    def __init__(self, ledger: Any, tenant: str) -> None:
        from secrets_ledger.domain.changes import RequestContext

        self.ledger, self.tenant, self.context = ledger, tenant, RequestContext
        self.latencies: list[tuple[float, float]] = []  # (started, seconds)
        self.acknowledged = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            started = time.perf_counter()
            self.ledger.put_secret(self.tenant, f"w/{n % 50}", PAYLOAD, None, None,
                                   self.context(actor="bench", request_id=f"w-{n}"))
            self.latencies.append((started, time.perf_counter() - started))
            self.acknowledged += 1
            n += 1

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def during(self, start: float, end: float) -> list[float]:
        return [seconds for began, seconds in self.latencies
                if began < end and began + seconds > start]


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=None,
                        help="events in the store (default 200,000; --quick 20,000)")
    parser.add_argument("--tenants", type=int, default=100)
    args = parser.parse_args()
    n_target = args.events or (20_000 if args.quick else 200_000)

    reps: list[dict[str, Any]] = []
    info: dict[str, Any] = {}
    with workspace("sqlite") as space:
        schema = space.schema("bk")
        rt = open_runtime(space, schema, follow=True)
        scratch = Path(tempfile.mkdtemp(prefix="ledger-backup-"))
        try:
            names = [f"tenant-{i:05d}" for i in range(args.tenants)]
            info["events"] = create_filled_tenants(rt, names, n_target // args.tenants, 50,
                                                   events_per_transaction=4000)
            data_dir = space.data_dir / schema
            info["bytes"] = sum((data_dir / name).stat().st_size for name in FILES)
            console.print(f"[bold]{NAME}[/bold]: {info['events']:,} events,"
                          f" {info['bytes'] / 1e6:,.0f} MB, reps={args.reps}")
            ledger = BlockingLedger(rt.ledger)
            from secrets_ledger.domain.changes import RequestContext

            ledger.open_tenant("bench-writer", RequestContext(actor="bench", request_id="open"))
            for rep in range(args.reps):
                r: dict[str, Any] = {}
                windows: dict[str, tuple[float, float]] = {}
                with Writer(ledger, "bench-writer") as writer:
                    time.sleep(0.5)  # the writer's steady state
                    started = time.perf_counter()
                    time.sleep(1.0)
                    windows["quiet"] = (started, time.perf_counter())
                    started = time.perf_counter()
                    bare_copy(data_dir, scratch / f"bare-{rep}")
                    windows["bare"] = (started, time.perf_counter())
                    r["bare_s"] = windows["bare"][1] - started
                    acknowledged = writer.acknowledged
                    before = events_in(data_dir / FILES[0])
                    started = time.perf_counter()
                    copies = rt.storage.backup(scratch / f"ledger-{rep}")
                    windows["backup"] = (started, time.perf_counter())
                    r["backup_s"] = windows["backup"][1] - started
                    time.sleep(0.5)  # a write the backup held up completes
                # Every write that overlapped a window, the one held up by the lock too.
                quiet, bare, during = (writer.during(*windows[label])
                                       for label in ("quiet", "bare", "backup"))
                r["copied_events"] = events_in(copies[0])
                r["holds_acknowledged"] = r["copied_events"] >= before and acknowledged > 0
                for label, values in (("quiet", quiet), ("bare", bare), ("backup", during)):
                    ms = [v * 1000 for v in values]
                    r[f"{label}_writes"] = len(ms)
                    r[f"{label}_p50_ms"] = percentile(ms, 50)
                    r[f"{label}_p99_ms"] = percentile(ms, 99)
                    r[f"{label}_max_ms"] = max(ms) if ms else float("nan")
                reps.append(r)
                console.print(f"rep {rep + 1}: bare {r['bare_s']:.2f} s, backup"
                              f" {r['backup_s']:.2f} s, write max during backup"
                              f" {r['backup_max_ms']:.0f} ms")
                for path in scratch.iterdir():
                    shutil.rmtree(path)
        finally:
            rt.close()
            shutil.rmtree(scratch, ignore_errors=True)

    seconds = {m: median([r[f"{m}_s"] for r in reps]) for m in ("bare", "backup")}
    mb = info["bytes"] / 1e6
    rows = [["bare copy (online backup API, no lock)", fmt(seconds["bare"], 2),
             fmt(mb / seconds["bare"])],
            ["secrets-ledger backup (events locked, both files)", fmt(seconds["backup"], 2),
             fmt(mb / seconds["backup"])]]
    print_table(f"Backup of {info['events']:,} events, {mb:,.0f} MB (median of {args.reps})",
                ["copy", "seconds", "MB/s"], rows)
    latency = [[label, fmt(median([r[f"{key}_writes"] for r in reps])),
                fmt(median([r[f"{key}_p50_ms"] for r in reps]), 2),
                fmt(median([r[f"{key}_p99_ms"] for r in reps]), 2),
                fmt(median([r[f"{key}_max_ms"] for r in reps]), 1)]
               for label, key in (("no copy (1 s)", "quiet"), ("during the bare copy", "bare"),
                                  ("during the ledger's backup", "backup"))]
    print_table("One writer's put_secret latency (ms)", ["while", "writes", "p50", "p99", "max"],
                latency)
    ratios = {"backup/bare": ratio(seconds["backup"], seconds["bare"])}
    print_table("Ratios", ["ratio", "value"], [[k, fmt_ratio(v)] for k, v in ratios.items()])
    ok = all(r["holds_acknowledged"] for r in reps)
    write_json(NAME, {"config": vars(args) | {"out": None}, "info": info, "runs": reps,
                      "medians_seconds": seconds, "ratios": ratios, "ok": ok}, args.out)
    return verdict(ok)


if __name__ == "__main__":
    run_benchmark(main)
