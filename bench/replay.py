"""Figure 3: replay rate of all views in events/s, against a bare copy of the same rows.

    /tmp/venv/bin/python bench/replay.py [--quick] [--backend sqlite]
    /tmp/venv/bin/python bench/replay.py --events 1000000 --tenants 1000   # the full figure

The store is filled fast (one-key write events, thousands per transaction, see
``_common.create_filled_tenants``), the live projector catches up (timed once, for
information), then each repetition times:

- ledger replay: ``projections.replay.replay(view_store, event_source, ALL_VIEWS,
  loader=...)`` with the loader ``secrets-ledger replay`` would choose (worker processes
  on PostgreSQL from 100,000 events on; ``--workers`` to choose), which rebuilds
  every view into fresh tables, swaps them in and returns their checksum (the checksum
  is part of the call; it is also timed alone, and replay without it is reported);
- ``secrets-ledger replay`` (``LedgerRuntime.replay``): the same replay, every tenant's
  transparency log recomputed from the records in the same pass and compared with the
  stored one by chunk digests; and, for information, the record-by-record log check
  alone (``History.verify_logs``, what names a bad position when the digests differ);
- library decode: ``select_notifications`` in pages of 1,000 + ``mapper.to_domain_event``
  over every event (the read half of any replay);
- ledger read: the same read through the ledger's event source (pages of 10,000, binary
  rows on PostgreSQL, ``EventDecoder``, which decodes with orjson and falls back to
  the mapper; the cycle collector paused, as in replay), for the profile;
- bare copy (PostgreSQL): ``COPY (SELECT * FROM <schema>.ledger_events) TO STDOUT`` into
  a file, and ``COPY ... FROM STDIN`` from it into a fresh table with the same indexes;
  (SQLite): ``SELECT *`` of every row, and ``executemany`` INSERT into a fresh table of a
  fresh WAL file in one transaction.

Correctness: every replay's checksum equals the checksum of the live views after the
projector caught up, the decode pass saw every stored event, the copy every row.
"""

from __future__ import annotations

import asyncio
import gc
import sqlite3
import time
from typing import Any

import psycopg
from _common import (
    Workspace,
    base_parser,
    console,
    create_filled_tenants,
    events_table,
    fmt,
    fmt_ratio,
    median,
    open_runtime,
    pg_version,
    print_table,
    ratio,
    run_benchmark,
    verdict,
    workspace,
    write_json,
)

NAME = "replay"


def count_events(space: Workspace, schema: str) -> int:
    sql = f"SELECT count(*) FROM {events_table(space, schema)}"
    if space.backend == "postgres":
        with psycopg.connect(space.url) as conn:
            row = conn.execute(sql).fetchone()
    else:
        conn = sqlite3.connect(space.data_dir / schema / "events.sqlite")
        try:
            row = conn.execute(sql).fetchone()
        finally:
            conn.close()
    return int(row[0]) if row else -1


def decode_all(rt: Any) -> int:
    recorder = rt.storage.events.recorder
    to_event = rt.storage.events.mapper.to_domain_event
    start, count = 0, 0
    while True:
        page = recorder.select_notifications(start, 1000, inclusive_of_start=False)
        if not page:
            return count
        for notification in page:
            to_event(notification)
        count += len(page)
        start = page[-1].id


def read_all(rt: Any) -> int:
    """The ledger's own read of every event (its event source's ``read``, pages of 10,000,
    ``EventDecoder``) with the cycle collector paused, as replay runs it: the read half
    of its replay. (With the collector running, each page of 10,000 events held in a
    list is traversed again and again: about half the rate.)"""
    source = rt.storage.event_source
    position, count = 0, 0
    gc.disable()
    try:
        while batch := source.read(position, 10_000):
            count += len(batch)
            position = batch[-1][0]
    finally:
        gc.enable()
    return count


def pg_copy(space: Workspace, schema: str, rep: int) -> tuple[float, float, int]:
    """(seconds out, seconds in, rows in) of a COPY out to a file and back into a table."""
    source = events_table(space, schema)
    target = f'"{schema}".copy_in_{rep}'
    path = space.data_dir / f"copy_{rep}.txt"
    with psycopg.connect(space.url) as conn:
        started = time.perf_counter()
        with conn.cursor() as cur, path.open("wb") as out, cur.copy(
                f"COPY (SELECT * FROM {source}) TO STDOUT") as copy:
            for data in copy:
                out.write(data)
        conn.commit()
        copied_out = time.perf_counter() - started
        started = time.perf_counter()
        with conn.cursor() as cur:
            cur.execute(f"CREATE TABLE {target} (LIKE {source} INCLUDING ALL)")
            with cur.copy(f"COPY {target} FROM STDIN") as copy, path.open("rb") as data:
                while chunk := data.read(1 << 20):
                    copy.write(chunk)
        conn.commit()
        copied_in = time.perf_counter() - started
        row = conn.execute(f"SELECT count(*) FROM {target}").fetchone()
        conn.execute(f"DROP TABLE {target}")
        conn.commit()
    path.unlink()
    return copied_out, copied_in, int(row[0]) if row else -1


def sqlite_copy(space: Workspace, schema: str, rep: int) -> tuple[float, float, int]:
    """(seconds out, seconds in, rows in): every row read, then inserted into a fresh file."""
    source = sqlite3.connect(space.data_dir / schema / "events.sqlite")
    target_path = space.data_dir / f"copy_{rep}.sqlite"
    target = sqlite3.connect(target_path, isolation_level=None)
    target.execute("PRAGMA journal_mode=WAL")
    target.execute("PRAGMA synchronous=NORMAL")
    try:
        ddl = [sql for (sql,) in source.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name = 'stored_events' AND sql IS NOT NULL"
            " ORDER BY type DESC")]
        started = time.perf_counter()
        rows = source.execute("SELECT * FROM stored_events").fetchall()
        copied_out = time.perf_counter() - started
        started = time.perf_counter()
        target.execute("BEGIN IMMEDIATE")
        for sql in ddl:
            target.execute(sql)
        marks = ", ".join("?" * len(rows[0])) if rows else ""
        target.executemany(f"INSERT INTO stored_events VALUES ({marks})", rows)
        target.execute("COMMIT")
        copied_in = time.perf_counter() - started
        (count,) = target.execute("SELECT count(*) FROM stored_events").fetchone()
    finally:
        source.close()
        target.close()
        for suffix in ("", "-wal", "-shm"):
            target_path.with_name(target_path.name + suffix).unlink(missing_ok=True)
    return copied_out, copied_in, int(count)


def view_rows(rt: Any, views: Any) -> dict[str, int]:
    out = {}
    with rt.storage.db.transaction() as cur:
        for view in views:
            for table in view.tables:
                cur.execute(f"SELECT count(*) FROM {table}")
                row = cur.fetchone()
                out[table] = int(row[0]) if row else -1
    return out


def main() -> int:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=None,
                        help="events in the store (default 100,000; --quick 20,000)")
    parser.add_argument("--workers", type=int, default=None,
                        help="replay's loading processes, as `secrets-ledger replay --workers`"
                             " (default: as it chooses)")
    parser.add_argument("--tenants", type=int, default=None, help="default 100; --quick 20")
    parser.add_argument("--keys-per-tenant", type=int, default=50,
                        help="writes cycle over this many keys per tenant")
    parser.add_argument("--fill-batch", type=int, default=4000,
                        help="events per transaction while filling")
    args = parser.parse_args()
    n_target = args.events or (20_000 if args.quick else 100_000)
    n_tenants = args.tenants or (20 if args.quick else 100)

    from secrets_ledger.core.principals import Principal
    from secrets_ledger.projections.checksum import views_checksum
    from secrets_ledger.projections.replay import replay
    from secrets_ledger.projections.views import ALL_VIEWS

    reps: list[dict[str, Any]] = []
    info: dict[str, Any] = {}
    with workspace(args.backend) as space:
        console.print(f"[bold]{NAME}[/bold]: backend={args.backend} events={n_target:,} "
                      f"tenants={n_tenants} reps={args.reps}"
                      + (f" postgres={pg_version(space.url)}" if args.backend == "postgres"
                         else ""))
        schema = space.schema("rp")
        rt = open_runtime(space, schema, follow=False)
        try:
            store, source = rt.storage.view_store, rt.storage.event_source
            names = [f"tenant-{i:05d}" for i in range(n_tenants)]
            started = time.perf_counter()
            filled = [0]

            def progress(count: int) -> None:
                filled[0] += count
                if filled[0] % 100_000 < count:
                    console.print(f"  filled {filled[0]:,} events")

            stored = create_filled_tenants(rt, names, n_target // n_tenants,
                                           args.keys_per_tenant,
                                           events_per_transaction=args.fill_batch,
                                           progress=progress)
            info["fill_s"] = time.perf_counter() - started
            n_events = count_events(space, schema)
            info["events"] = n_events
            info["fill_events_per_s"] = stored / info["fill_s"]
            console.print(f"filled {n_events:,} events in {info['fill_s']:.1f} s "
                          f"({info['fill_events_per_s']:,.0f} events/s)")

            started = time.perf_counter()
            applied = rt.projector.catch_up()  # summed over the views
            info["live_catch_up_s"] = time.perf_counter() - started
            info["live_catch_up_view_applications"] = applied
            info["live_catch_up_events_per_s"] = n_events / info["live_catch_up_s"]
            console.print(f"live projector caught up {n_events:,} events in "
                          f"{info['live_catch_up_s']:.1f} s")
            started = time.perf_counter()
            live_checksum = views_checksum(store, ALL_VIEWS)
            info["live_checksum_s"] = time.perf_counter() - started
            info["live_checksum"] = live_checksum
            info["view_rows"] = view_rows(rt, ALL_VIEWS)

            # As ``secrets-ledger replay`` chooses (the storage's replay loader).
            loader = rt.storage.replay_loader(n_events, args.workers)
            info["replay_workers"] = getattr(loader, "workers", 1)
            for rep in range(args.reps):
                r: dict[str, Any] = {}
                started = time.perf_counter()
                r["replay_checksum"] = replay(store, source, ALL_VIEWS, loader=loader)
                r["replay_s"] = time.perf_counter() - started
                # ``secrets-ledger replay``: the views, every log checked in the same pass.
                started = time.perf_counter()
                checked, logs = rt.replay(ALL_VIEWS, args.workers)
                r["replay_and_log_check_s"] = time.perf_counter() - started
                r["logs_ok"] = logs.ok and logs.leaves == info["events"]
                r["replay_and_log_check_checksum"] = checked
                started = time.perf_counter()
                again = views_checksum(store, ALL_VIEWS)
                r["checksum_s"] = time.perf_counter() - started
                r["replay_without_checksum_s"] = r["replay_s"] - r["checksum_s"]
                started = time.perf_counter()
                asyncio.run(rt.ledger.history.verify_logs(Principal.operator()))
                r["log_check_s"] = time.perf_counter() - started
                started = time.perf_counter()
                r["decoded"] = decode_all(rt)
                r["decode_s"] = time.perf_counter() - started
                started = time.perf_counter()
                r["ledger_read"] = read_all(rt)
                r["ledger_read_s"] = time.perf_counter() - started
                copy = pg_copy if args.backend == "postgres" else sqlite_copy
                r["copy_out_s"], r["copy_in_s"], r["copied_rows"] = copy(space, schema, rep)
                r["copy_round_trip_s"] = r["copy_out_s"] + r["copy_in_s"]
                r["checksum_matches_live"] = (r["replay_checksum"] == live_checksum
                                              and again == live_checksum
                                              and checked == live_checksum)
                for what in ("replay", "replay_without_checksum", "log_check",
                             "replay_and_log_check", "decode", "ledger_read",
                             "copy_out", "copy_in", "copy_round_trip"):
                    r[f"{what}_events_per_s"] = n_events / r[f"{what}_s"]
                reps.append(r)
                console.print(
                    f"rep {rep + 1}: replay {r['replay_events_per_s']:,.0f} ev/s"
                    f" ({r['replay_s']:.1f} s, checksum {r['checksum_s']:.1f} s)"
                    f"  decode {r['decode_events_per_s']:,.0f} ev/s"
                    f"  copy out {r['copy_out_events_per_s']:,.0f} / in"
                    f" {r['copy_in_events_per_s']:,.0f} ev/s"
                    f"  checksum {'ok' if r['checksum_matches_live'] else 'MISMATCH'}")
        finally:
            rt.close()

    metrics = ("replay", "replay_without_checksum", "log_check", "replay_and_log_check",
               "decode", "ledger_read", "copy_out", "copy_in", "copy_round_trip")
    medians = {m: median([r[f"{m}_events_per_s"] for r in reps]) for m in metrics}
    seconds = {m: median([r[f"{m}_s"] for r in reps]) for m in metrics}
    ratios = {
        "replay/copy_round_trip": ratio(medians["replay"], medians["copy_round_trip"]),
        "replay_without_checksum/copy_round_trip": ratio(medians["replay_without_checksum"],
                                                         medians["copy_round_trip"]),
        "replay/decode": ratio(medians["replay"], medians["decode"]),
        "decode/copy_out": ratio(medians["decode"], medians["copy_out"]),
        "live_catch_up/replay": ratio(info["live_catch_up_events_per_s"], medians["replay"]),
    }
    copy_label = "COPY" if args.backend == "postgres" else "sqlite3 SELECT/INSERT"
    labels = {
        "replay": "ledger replay, all views (as called, incl. checksum)",
        "replay_without_checksum": "ledger replay minus its checksum pass",
        "log_check": "the logs checked record by record, alone (verify's way)",
        "replay_and_log_check": "`secrets-ledger replay`: views + every log, one pass",
        "decode": "library read + decode (pages of 1,000)",
        "ledger_read": "ledger read + decode (pages of 10,000, EventDecoder, no GC)",
        "copy_out": f"bare {copy_label} out",
        "copy_in": f"bare {copy_label} in (fresh table)",
        "copy_round_trip": f"bare {copy_label} out + in",
    }
    rows = [[labels[m], fmt(medians[m]), " / ".join(fmt(r[f"{m}_events_per_s"]) for r in reps),
             fmt(seconds[m], 2)] for m in metrics]
    rows.append(["live projector catch-up (once, for information)",
                 fmt(info["live_catch_up_events_per_s"]), "-", fmt(info["live_catch_up_s"], 2)])
    print_table(f"Figure 3 - replay of {info['events']:,} events over {n_tenants} tenants "
                f"({args.backend}, median of {args.reps})",
                ["pass", "events/s", "each run", "seconds"], rows,
                caption="view rows: " + ", ".join(f"{k}={v:,}"
                                                  for k, v in info["view_rows"].items()))
    print_table("Figure 3 - ratios (medians)", ["ratio", "value"],
                [[k, fmt_ratio(v)] for k, v in ratios.items()])
    ok = all(r["checksum_matches_live"] and r["logs_ok"] and r["decoded"] == info["events"]
             and r["ledger_read"] == info["events"]
             and r["copied_rows"] == info["events"] for r in reps)
    checks = {
        "ok": ok,
        "live_checksum": info["live_checksum"],
        "replay_checksums": [r["replay_checksum"] for r in reps],
        "decoded": [r["decoded"] for r in reps],
        "copied_rows": [r["copied_rows"] for r in reps],
        "events": info["events"],
    }
    print_table("Correctness", ["check", "result"], [
        ["replay checksum == live views' checksum",
         "yes" if all(r["checksum_matches_live"] for r in reps) else "[red]NO[/red]"],
        ["decode pass saw every event", "yes" if all(
            r["decoded"] == info["events"] for r in reps) else "[red]NO[/red]"],
        ["copy moved every row", "yes" if all(
            r["copied_rows"] == info["events"] for r in reps) else "[red]NO[/red]"],
    ])
    suffix = "" if args.backend == "postgres" else f"_{args.backend}"
    write_json(NAME + suffix, {
        "config": {"backend": args.backend, "events_target": n_target, "tenants": n_tenants,
                   "keys_per_tenant": args.keys_per_tenant, "fill_batch": args.fill_batch,
                   "reps": args.reps, "quick": args.quick},
        "info": info, "runs": reps, "medians_events_per_s": medians,
        "medians_seconds": seconds, "ratios": ratios, "checks": checks, "ok": ok,
    }, args.out)
    return verdict(ok)


if __name__ == "__main__":
    run_benchmark(main)
