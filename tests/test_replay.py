"""Replay, crash recovery and exactly-once projection (SPEC 5).

Every test runs on SQLite and on PostgreSQL. The live views are compared with views
rebuilt from position 0 by ``replay`` through the checksum both give; the audit trail
is also counted row by row against the changes the test made, so that a duplicate or
a lost event shows up even where a checksum would only say "different".
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

import psycopg
import pytest

from secrets_ledger.adapters.eventstore import EventDecoder
from secrets_ledger.adapters.postgres.viewstore import PostgresViewWriter
from secrets_ledger.adapters.sqlite import copytext
from secrets_ledger.adapters.sqlite.database import SQLiteDatabase
from secrets_ledger.adapters.sqlite.viewstore import SQLiteViewWriter
from secrets_ledger.core.ports import AuditFilter
from secrets_ledger.core.settings import Settings
from secrets_ledger.domain.changes import DeleteKey, Precondition, RequestContext, SetValue
from secrets_ledger.domain.reads import ReadRecord, ValueRead
from secrets_ledger.domain.tenant import Tenant, tenant_id_for
from secrets_ledger.domain.times import utc_now
from secrets_ledger.projections import audit as audit_module
from secrets_ledger.projections import current as current_module
from secrets_ledger.projections.audit import AuditTrail, changes_of
from secrets_ledger.projections.checksum import views_checksum
from secrets_ledger.projections.current import CurrentSecretsView
from secrets_ledger.projections.ports import TableClone, ViewWriter
from secrets_ledger.projections.projector import Projector
from secrets_ledger.projections.replay import replay
from secrets_ledger.projections.view import View
from secrets_ledger.projections.views import ALL_VIEWS, views_named
from secrets_ledger.runtime import LedgerRuntime
from tests.conftest import PG_URL
from tests.support import Blocking, blocking, held_writer

CHANGE_ACTIONS = ("tenant_opened", "write", "delete", "undelete", "destroy", "rollback",
                  "key_rotated")


def request(actor: str = "tok_test", **extra: str) -> RequestContext:
    return RequestContext(actor=actor, request_id=f"req-{uuid.uuid4().hex[:12]}", **extra)


@pytest.fixture
def still_runtime(settings: Settings) -> Iterator[LedgerRuntime]:
    """A runtime with no projector thread: only the test moves the views."""
    rt = LedgerRuntime(settings, follow=False)
    yield rt
    rt.close()


def make_history(ledger: Blocking, rounds: int) -> int:
    """Writes a varied history to two tenants with no read; returns the changes made."""
    changes = 0
    for name in ("acme", "globex"):
        ledger.open_tenant(name, request())
        changes += 1
    for i in range(rounds):
        name = ("acme", "globex")[i % 2]
        key = f"app/key-{i % 9}"
        ledger.put_secret(name, key, {"i": i}, {"round": str(i)}, None, request(f"tok_{i % 3}"))
        changes += 1
        if i % 5 == 4:
            ledger.write_secrets(name, [SetValue(f"batch/{i}/a"), SetValue(f"batch/{i}/b"),
                                        DeleteKey(key)],
                                 {f"batch/{i}/a": i, f"batch/{i}/b": [i]}, request())
            changes += 3
            if i % 10 == 9:
                ledger.undelete_secret(name, key, request())
                changes += 1
    return changes


def rich_history(ledger: Blocking) -> None:
    """Every kind of change (reads included), for the checksum comparisons."""
    make_history(ledger, 40)
    ctx = request(idempotency_key="idem-1", request_hash="h1")
    ledger.put_secret("acme", "idem/key", "v", None, None, ctx)
    ledger.put_secret("acme", "cas/key", 1, None, Precondition.at_version(0), request())
    ledger.put_secret("acme", "cas/key", 2, None, Precondition.at_version(1), request())
    # The rollback reads version 1 from the views: let them catch up first (a rollback
    # right after a write is covered by test_concurrency).
    assert ledger.list_versions("acme", "cas/key")[0] == 2
    ledger.rollback_secret("acme", "cas/key", 1, request())
    ledger.destroy_versions("acme", "cas/key", [2], request())
    ledger.rotate_tenant_key("globex", request())
    ledger.put_secret("globex", "after/rotation", "x", None, None, request())
    ledger.delete_secret("globex", "after/rotation", None, request())
    assert ledger.get_secret("acme", "cas/key", request()).value == 1


def caught_up(runtime: LedgerRuntime) -> None:
    target = runtime.storage.event_source.max_position()
    assert runtime.projector.wait_for(target, 30)


def change_rows(runtime: LedgerRuntime) -> list[tuple[Any, ...]]:
    marks = ", ".join(["%s"] * len(CHANGE_ACTIONS))
    with runtime.storage.db.transaction() as cur:
        cur.execute(
            "SELECT tenant_id, action, key, version, request_id FROM audit_trail"
            f" WHERE action IN ({marks}) ORDER BY tenant_id, position",
            CHANGE_ACTIONS,
        )
        return [tuple(row) for row in cur.fetchall()]


def assert_views_complete(runtime: LedgerRuntime, changes: int) -> None:
    """Tracking is at the head, every change has one audit row, and replay agrees."""
    storage = runtime.storage
    head = storage.event_source.max_position()
    assert storage.view_store.positions() == {"current": head, "audit": head}
    rows = change_rows(runtime)
    assert len(rows) == changes
    assert len(set(rows)) == changes, "an event was applied twice"
    live = views_checksum(storage.view_store, ALL_VIEWS)
    assert replay(storage.view_store, storage.event_source, views_named("all")) == live


# ---- replay --------------------------------------------------------------------------------


def test_replaying_all_views_gives_the_checksum_of_the_live_views(
        runtime: LedgerRuntime) -> None:
    rich_history(blocking(runtime))
    caught_up(runtime)
    storage = runtime.storage
    live = views_checksum(storage.view_store, ALL_VIEWS)
    progressed: list[int] = []
    rebuilt = replay(storage.view_store, storage.event_source, views_named("all"),
                     progress=progressed.append)
    assert rebuilt == live
    assert views_checksum(storage.view_store, ALL_VIEWS) == live
    assert sum(progressed) >= storage.event_source.max_position()
    assert blocking(runtime).get_secret("acme", "cas/key", request()).value == 1


def test_a_swap_that_meets_a_deadlock_is_run_again(runtime: LedgerRuntime,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A replay beside a running server: its swap may deadlock with the server's readers
    (PostgreSQL aborts one of them); the swap is run again, the rebuild kept."""
    rich_history(blocking(runtime))
    caught_up(runtime)
    storage = runtime.storage
    live = views_checksum(storage.view_store, ALL_VIEWS)
    failed: list[str] = []
    swap = TableClone.swap

    class Deadlock(Exception):
        pass

    def deadlocked_once(clone: TableClone, tx: ViewWriter) -> None:
        if not failed:
            failed.append(clone.table)
            raise Deadlock("deadlock detected")
        swap(clone, tx)

    monkeypatch.setattr(TableClone, "swap", deadlocked_once)
    monkeypatch.setattr(storage.view_store, "transient", (Deadlock,))
    assert replay(storage.view_store, storage.event_source, views_named("all")) == live
    assert failed and views_checksum(storage.view_store, ALL_VIEWS) == live


def test_every_tenant_event_class_is_projected_and_named_in_the_audit_trail() -> None:
    """The views dispatch on the exact class: a new event class must be listed there."""
    event_classes = {cls for cls in vars(Tenant).values()
                     if isinstance(cls, type) and issubclass(cls, Tenant.Event)
                     and cls not in (Tenant.Event, Tenant.Created)}  # (the library's own
    # Created class, which the ledger never triggers: Opened creates a tenant)
    assert len(event_classes) >= 9
    assert event_classes <= set(current_module._GATHERERS)
    assert event_classes <= set(audit_module._CHANGES)


def test_reads_recorded_one_per_event_by_earlier_versions_still_project(
        runtime: LedgerRuntime) -> None:
    rich_history(blocking(runtime))
    acme = str(tenant_id_for("acme"))
    older = ValueRead._create(ValueRead.Recorded, id=uuid.uuid4(), timestamp=utc_now(),
                              tenant_id=acme, key="app/key-0", version=1, actor="tok_old",
                              request_id="req-older")
    runtime.storage.events.save(older)
    caught_up(runtime)
    reads = blocking(runtime).audit("acme", AuditFilter(actor="tok_old")).items
    assert [(r.action, r.key, r.version, r.request_id) for r in reads] == [
        ("read", "app/key-0", 1, "req-older")]
    storage = runtime.storage
    assert replay(storage.view_store, storage.event_source, ALL_VIEWS) == views_checksum(
        storage.view_store, ALL_VIEWS)
    assert blocking(runtime).audit("acme", AuditFilter(actor="tok_old")).items == reads


def test_the_reads_of_one_batch_are_one_event_with_a_row_each(runtime: LedgerRuntime) -> None:
    rich_history(blocking(runtime))
    caught_up(runtime)
    before = runtime.storage.event_source.max_position()
    records = [ReadRecord(str(tenant_id_for(name)), "app/key-1", 1, f"tok_{name}", f"req-{n}")
               for n, name in enumerate(["acme", "globex", "acme"])]
    threads = [threading.Thread(target=blocking(runtime).get_secret, args=(
        name, "app/key-1", RequestContext(record.actor, record.request_id)),
        kwargs={"version": 1}) for record, name in zip(records, ["acme", "globex", "acme"],
                                                        strict=True)]
    with held_writer(runtime.ledger):
        for thread in threads:
            thread.start()
        time.sleep(0.3)  # all three wait behind the held batch
    for thread in threads:
        thread.join()
    assert runtime.storage.event_source.max_position() == before + 1
    caught_up(runtime)
    for name in ("acme", "globex"):
        rows = blocking(runtime).audit(name, AuditFilter(action="read", actor=f"tok_{name}")).items
        assert sorted(r.request_id for r in rows) == sorted(
            r.request_id for r in records if r.actor == f"tok_{name}")
        assert len({r.position for r in rows}) == len(rows)


@pytest.mark.parametrize("view", ["audit", "current"])
def test_replaying_one_view_gives_the_checksum_of_that_live_view(
        runtime: LedgerRuntime, view: str) -> None:
    rich_history(blocking(runtime))
    caught_up(runtime)
    storage = runtime.storage
    chosen = views_named(view)
    live_chosen = views_checksum(storage.view_store, chosen)
    live_all = views_checksum(storage.view_store, ALL_VIEWS)
    assert replay(storage.view_store, storage.event_source, chosen) == live_chosen
    assert views_checksum(storage.view_store, ALL_VIEWS) == live_all


def test_a_replay_of_an_empty_store_matches_the_empty_views(
        still_runtime: LedgerRuntime) -> None:
    storage = still_runtime.storage
    empty = views_checksum(storage.view_store, ALL_VIEWS)
    assert replay(storage.view_store, storage.event_source, views_named("all")) == empty


def test_readers_read_during_and_after_replays(runtime: LedgerRuntime) -> None:
    ledger = blocking(runtime)
    make_history(ledger, 60)
    expected = {k.key: k.version for k in ledger.list_keys("acme", limit=1000).items}
    key = "app/key-1"
    assert key in expected
    value = ledger.get_secret("acme", key, request()).value
    stop = threading.Event()
    errors: list[BaseException] = []
    reads = [0]

    def reader() -> None:
        try:
            while not stop.is_set():
                assert ledger.get_secret("acme", key, request()).value == value
                listed = {k.key: k.version for k in ledger.list_keys("acme", limit=1000).items}
                assert listed == expected
                trail = ledger.audit("acme", AuditFilter(action="tenant_opened")).items
                assert len(trail) == 1
                reads[0] += 1
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=reader, name=f"reader-{i}") for i in range(3)]
    for thread in threads:
        thread.start()
    storage = runtime.storage
    try:
        for view in ("all", "audit", "current", "all"):
            replay(storage.view_store, storage.event_source, views_named(view))
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert not errors, errors[0]
    assert reads[0] > 0
    caught_up(runtime)
    live = views_checksum(storage.view_store, ALL_VIEWS)
    assert replay(storage.view_store, storage.event_source, views_named("all")) == live
    assert ledger.get_secret("acme", key, request()).value == value


# ---- a crash in the middle of a projection ---------------------------------------------------


class SimulatedCrash(Exception):
    """Raised by a view to simulate the projection process dying mid-batch."""


def crashing(view_class: type[View], after: int) -> View:
    """The view, except that the batch holding its event number ``after + 1`` raises
    after the view wrote its rows (a crash in the middle of the transaction)."""

    class Crashing(view_class):  # type: ignore[valid-type,misc]
        applied: ClassVar[int] = 0

        def apply_batch(self, tx: ViewWriter, batch: Sequence[tuple[int, Any]]) -> None:
            super().apply_batch(tx, batch)
            if type(self).applied + len(batch) > after:
                raise SimulatedCrash(f"crash at position {batch[-1][0]}")
            type(self).applied += len(batch)

    return Crashing()


@pytest.mark.parametrize("crashing_view", ["current", "audit"])
def test_a_projection_crashing_mid_batch_resumes_without_duplicates_or_gaps(
        still_runtime: LedgerRuntime, crashing_view: str) -> None:
    storage = still_runtime.storage
    changes = make_history(blocking(still_runtime), 150)
    head = storage.event_source.max_position()
    views = [crashing(cls, 100) if cls.name == crashing_view else cls()
             for cls in (CurrentSecretsView, AuditTrail)]
    broken = Projector(storage.view_store, storage.event_source, views, batch_size=30)
    with pytest.raises(SimulatedCrash):
        run_until_failure(broken)
    positions = storage.view_store.positions()
    # Batches before the crash committed; the crashed one left no row and no position.
    assert 0 < positions[crashing_view] < head
    if crashing_view == "audit":
        done = [e for p, e in storage.event_source.read(0, head) if p <= positions["audit"]]
        assert len(change_rows(still_runtime)) == sum(len(changes_of(e)) for e in done)

    assert Projector(storage.view_store, storage.event_source).catch_up() > 0
    assert_views_complete(still_runtime, changes)


def run_until_failure(projector: Projector) -> None:
    while projector.run_once():
        pass


def test_two_projectors_running_at_once_apply_each_event_exactly_once(
        still_runtime: LedgerRuntime) -> None:
    storage = still_runtime.storage
    changes = make_history(blocking(still_runtime), 120)
    head = storage.event_source.max_position()
    notifications = len(storage.event_source.read(0, head + 1))
    applied = [0, 0]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def follow(index: int) -> None:
        projector = Projector(storage.view_store, storage.event_source, batch_size=25)
        try:
            barrier.wait(timeout=30)
            while min(storage.view_store.positions().values()) < head:
                applied[index] += projector.run_once()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=follow, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[0]
    # Each event was applied once to each of the two views, by one projector or the other.
    assert sum(applied) == 2 * notifications
    assert_views_complete(still_runtime, changes)


# ---- killing the projection process --------------------------------------------------------


def project_command() -> list[str]:
    found = shutil.which("secrets-ledger") or str(Path(sys.executable).with_name(
        "secrets-ledger"))
    if Path(found).exists():
        return [found, "project"]
    return [sys.executable, "-m", "secrets_ledger.api.cli", "project"]


def storage_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env["LEDGER_DATA_DIR"] = str(settings.data_dir)
    if settings.database_url is not None:
        env["LEDGER_DATABASE_URL"] = PG_URL
        env["LEDGER_DATABASE_SCHEMA"] = settings.database_schema
    return env


def bulk_history(ledger: Blocking, events: int, tenants: int = 16) -> int:
    """About ``events`` events over a few tenants, written by one thread per tenant;
    returns the changes made."""
    per_tenant = events // tenants - 1
    errors: list[BaseException] = []

    def fill(name: str) -> None:
        try:
            ledger.open_tenant(name, request())
            for i in range(per_tenant):
                ledger.put_secret(name, f"bulk/{i % 50}", {"i": i}, None, None, request())
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=fill, args=(f"bulk-{t}",)) for t in range(tenants)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[0]
    return tenants * (per_tenant + 1)


def test_killing_the_projection_process_and_restarting_it_leaves_no_duplicate_or_gap(
        still_runtime: LedgerRuntime, settings: Settings) -> None:
    storage = still_runtime.storage
    changes = bulk_history(blocking(still_runtime), 2000)
    head = storage.event_source.max_position()
    assert storage.view_store.positions() == {"current": 0, "audit": 0}
    env = storage_env(settings)
    follower = subprocess.Popen(project_command(), env=env, cwd=settings.data_dir,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while max(storage.view_store.positions().values()) == 0:
            assert follower.poll() is None, follower.stderr.read() if follower.stderr else ""
            assert time.monotonic() < deadline, "the projector made no progress"
            time.sleep(0.002)
    finally:
        follower.send_signal(signal.SIGKILL)
        follower.wait(timeout=30)
        if follower.stderr is not None:
            follower.stderr.close()
    assert follower.returncode == -signal.SIGKILL
    killed_at = storage.view_store.positions()
    assert all(0 <= p <= head for p in killed_at.values())

    once = subprocess.run([*project_command(), "--once"], env=env, cwd=settings.data_dir,
                          capture_output=True, text=True, timeout=120, check=False)
    assert once.returncode == 0, once.stderr
    assert_views_complete(still_runtime, changes)


def test_a_replay_in_many_small_batches_gives_the_same_views(runtime: LedgerRuntime) -> None:
    rich_history(blocking(runtime))
    caught_up(runtime)
    storage = runtime.storage
    live = views_checksum(storage.view_store, ALL_VIEWS)
    assert replay(storage.view_store, storage.event_source, views_named("all"),
                  batch_size=7) == live


def index_shapes(runtime: LedgerRuntime) -> tuple[list[tuple[str, str]], list[str]]:
    """(table, index definition without its name) of every view table, and, on
    PostgreSQL, the index names (SQLite's are renamed on every replay: names are global)."""
    tables = [table for view in ALL_VIEWS for table in view.tables]
    marks = ", ".join(["%s"] * len(tables))
    with runtime.storage.db.transaction() as cur:
        if runtime.settings.database_url is not None:
            cur.execute("SELECT tablename, indexname, indexdef FROM pg_indexes WHERE"
                        f" schemaname = current_schema() AND tablename IN ({marks})", tables)
        else:
            cur.execute("SELECT tbl_name, name, sql FROM sqlite_master WHERE type = 'index'"
                        f" AND sql IS NOT NULL AND tbl_name IN ({marks})", tables)
        rows = cur.fetchall()
    shapes = sorted((table, re.sub(r"INDEX \S+ ON \S+", "INDEX ON", sql))
                    for table, _, sql in rows)
    names = sorted(name for _, name, _ in rows) if runtime.settings.database_url is not None \
        else []
    return shapes, names


def test_replaying_twice_keeps_every_key_and_index_of_the_views(runtime: LedgerRuntime) -> None:
    rich_history(blocking(runtime))
    caught_up(runtime)
    before = index_shapes(runtime)
    assert before[0], "the views have indexes"
    for _ in range(2):
        replay(runtime.storage.view_store, runtime.storage.event_source, views_named("all"))
        assert index_shapes(runtime) == before
    # The keys still hold: a second row for a key is refused.
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"), \
            runtime.storage.db.transaction() as cur:
        cur.execute("INSERT INTO audit_trail (tenant_id, position, at, action, actor,"
                    " request_id) SELECT tenant_id, position, at, action, actor, request_id"
                    " FROM audit_trail LIMIT 1")


def test_the_fast_decoder_gives_the_events_the_library_mapper_gives(
        runtime: LedgerRuntime) -> None:
    rich_history(blocking(runtime))
    blocking(runtime).put_secret("acme", "unicode/key", "v", {"note": "é ☃ \"q\" \\ \u2028"},
                              None, request(actor="tok_ünï"))
    storage = runtime.storage
    recorder, mapper = storage.events.recorder, storage.events.mapper
    decode = EventDecoder(mapper)
    fallbacks: list[Any] = []

    class CountingMapper:
        def to_domain_event(self, stored: Any) -> Any:
            fallbacks.append(stored)
            return mapper.to_domain_event(stored)

    decode.mapper = CountingMapper()  # type: ignore[assignment]
    notifications = recorder.select_notifications(0, 10_000)
    assert len(notifications) > 50
    for notification in notifications:
        fast, slow = decode(notification), mapper.to_domain_event(notification)
        assert type(fast) is type(slow)
        assert fast.__dict__ == slow.__dict__
    assert not fallbacks, "the ledger's own events never need the library's decoder"


@pytest.mark.parametrize("chunk", [1, 10_000], ids=["a-row-a-chunk", "one-chunk"])
@pytest.mark.parametrize("rows", [
    [("a\tb\nc\\d\re\bf\fg\vh\x01i é ☃ \"q\" '", 7, 2**62, True), ("", -1, 0, False),
     (None, None, 5, None), ("\\N", 1, 6, False)],
    [("plain é ☃ \"q\" '", 7, 2**62, True), ("", -1, 0, False), (None, None, 5, None)],
], ids=["text-to-escape", "plain-text"])
def test_the_checksum_reads_sqlite_rows_as_postgresql_copies_its_own(
        tmp_path: Path, rows: list[tuple[Any, ...]], chunk: int,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Both backends' checksums hash the same bytes for the same rows (SQLite's lines
    are built unescaped until a chunk needs escapes: one row a chunk, the plain rows
    come first and the rest is read again escaped)."""
    monkeypatch.setattr(copytext, "_CHUNK", chunk)
    table = "CREATE TABLE copied (t TEXT, i INTEGER, b BIGINT NOT NULL, f BOOLEAN)"
    insert = "INSERT INTO copied VALUES (%s, %s, %s, %s)"
    with psycopg.connect(PG_URL) as conn, conn.cursor() as cur:
        cur.execute(table.replace("CREATE", "CREATE TEMPORARY"))
        cur.executemany(insert, rows)
        copied = b"".join(PostgresViewWriter(cur).rows_as_copy_text("copied", "b"))
    sqlite = SQLiteDatabase(tmp_path / "copied.sqlite")
    try:
        with sqlite.transaction() as cur:
            cur.execute(table)
            cur.executemany(insert, rows)
            ours = b"".join(SQLiteViewWriter(cur).rows_as_copy_text("copied", "b"))
    finally:
        sqlite.close()
    assert copied.count(b"\n") == len(rows)
    assert ours == copied


def test_a_copy_that_fails_or_stops_early_leaves_its_connection_usable() -> None:
    """PostgreSQL's rows are read from libpq directly: an error is raised, and a reader
    that stops early leaves the rest drained, the connection idle."""
    with psycopg.connect(PG_URL, autocommit=True) as conn, conn.cursor() as cur:
        writer = PostgresViewWriter(cur)
        with pytest.raises(psycopg.OperationalError, match="no_such_table"):
            list(writer.rows_as_copy_text("no_such_table", "x"))
        assert cur.execute("SELECT 1").fetchone() == (1,)
        rows = writer.rows_as_copy_text("(SELECT generate_series(1, 5000) AS n) AS s", "n")
        assert bytes(next(rows)) == b"1\n"
        rows.close()
        assert cur.execute("SELECT 2").fetchone() == (2,)
        assert conn.pgconn.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_sqlite_replays_in_the_replaying_thread_whatever_is_asked(
        runtime: LedgerRuntime, backend: str) -> None:
    """One SQLite file has one writer: no worker processes, even when asked for."""
    if backend == "sqlite":
        assert runtime.storage.replay_loader(1_000_000, 4) is None
    else:
        assert runtime.storage.replay_loader(10, 4) is not None
