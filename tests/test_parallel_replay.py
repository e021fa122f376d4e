"""Replay loaded by worker processes (adapters/postgres/parallel_replay.py), PostgreSQL: the
parts hold every event once and each tenant's stream whole, the rebuilt views equal the
live ones, and a failed worker fails the replay without touching the live views."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from secrets_ledger.adapters.postgres.events import INDEX_ORDER
from secrets_ledger.adapters.postgres.parallel_replay import ParallelLoad, loader_for
from secrets_ledger.core.principals import Principal
from secrets_ledger.core.settings import Settings
from secrets_ledger.projections.checksum import views_checksum
from secrets_ledger.projections.replay import replay
from secrets_ledger.projections.views import ALL_VIEWS
from secrets_ledger.runtime import LedgerRuntime
from tests.conftest import PG_URL
from tests.support import blocking, run
from tests.test_replay import caught_up, request, rich_history

pytestmark = pytest.mark.parametrize("backend", ["postgres"])  # partitioned reads are SQL


@pytest.fixture
def still_runtime(settings: Settings) -> Iterator[LedgerRuntime]:
    rt = LedgerRuntime(settings, follow=True)
    yield rt
    rt.close()


def many_tenants_with_reads(rt: LedgerRuntime) -> None:
    rich_history(blocking(rt))  # acme and globex: every kind of change
    for n in range(12):
        name = f"tenant-{n}"
        blocking(rt).open_tenant(name, request())
        for k in range(3):
            blocking(rt).put_secret(name, f"key/{k}", n * k, None, None, request())
        blocking(rt).get_secret(name, "key/1", request())  # a read record: its own stream


def test_reads_scan_the_positions_index_in_order_and_never_sort(still_runtime: LedgerRuntime
                                                                ) -> None:
    """Whatever the table's statistics say (on this small table the planner would
    rather scan it all and sort), events are read along the positions' index."""
    many_tenants_with_reads(still_runtime)
    source = still_runtime.storage.event_source
    with psycopg.connect(PG_URL, autocommit=True) as conn, conn.transaction():
        conn.execute(INDEX_ORDER)
        for statement, params in [(source.read_statement, (0, 10)),
                                  (source.part_statement, (0, 10, 3, 1)),
                                  (source.shared_statement, (0, 10, 3, 1, ["A.B"]))]:
            plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN {statement}", params))
            assert "Index Scan using" in plan, plan
            assert "Sort" not in plan and "JIT" not in plan, plan


def test_parts_hold_every_event_once_and_each_stream_whole(still_runtime: LedgerRuntime
                                                          ) -> None:
    many_tenants_with_reads(still_runtime)
    source = still_runtime.storage.event_source
    head = source.max_position()
    everything = list(source.read(0, head + 1))
    seen: dict[int, int] = {}
    stream_part: dict[object, int] = {}
    for part in range(3):
        position = 0
        while batch := source.read_part(position, 7, part=part, parts=3, until=head):
            assert [p for p, _ in batch] == sorted(p for p, _ in batch)
            for event_position, event in batch:
                assert event_position not in seen
                seen[event_position] = part
                assert stream_part.setdefault(event.originator_id, part) == part
            position = batch[-1][0]
    assert sorted(seen) == [p for p, _ in everything]
    assert len(set(seen.values())) == 3  # the streams did spread over the parts


def test_a_replay_loaded_by_worker_processes_equals_the_live_views(
        still_runtime: LedgerRuntime, settings: Settings) -> None:
    many_tenants_with_reads(still_runtime)
    caught_up(still_runtime)
    storage = still_runtime.storage
    live = views_checksum(storage.view_store, ALL_VIEWS)
    progressed: list[int] = []
    rebuilt = replay(storage.view_store, storage.event_source, ALL_VIEWS,
                     progress=progressed.append, loader=ParallelLoad(settings, 3))
    assert rebuilt == live
    assert sum(progressed) == storage.event_source.max_position()
    assert views_checksum(storage.view_store, ALL_VIEWS) == live


def test_worker_processes_check_every_log_as_one_process_does(
        still_runtime: LedgerRuntime, settings: Settings) -> None:
    """Each process folds the logs of its part's tenants, from its own events and from
    every part's read records (they add leaves to several tenants' logs)."""
    many_tenants_with_reads(still_runtime)
    storage, history = still_runtime.storage, still_runtime.ledger.history
    folds = []
    for loader in (None, ParallelLoad(settings, 3)):
        check = run(history.replay_check(Principal.operator(), chunk=2))
        replay(storage.view_store, storage.event_source, ALL_VIEWS, loader=loader, check=check)
        assert check.differences() == []
        folds.append({tenant: (log.head, log.digests) for tenant, log in check.fold.logs.items()})
    assert folds[0] == folds[1] and len(folds[0]) == 14


def test_a_failed_worker_fails_the_replay_and_leaves_the_live_views(
        still_runtime: LedgerRuntime, settings: Settings, tmp_path: Path) -> None:
    many_tenants_with_reads(still_runtime)
    caught_up(still_runtime)
    storage = still_runtime.storage
    live = views_checksum(storage.view_store, ALL_VIEWS)
    unreachable = Settings(data_dir=tmp_path / "elsewhere",
                           database_url="postgresql://postgres@127.0.0.1:1/none",
                           database_schema=settings.database_schema)
    with pytest.raises(RuntimeError, match="replay worker"):
        replay(storage.view_store, storage.event_source, ALL_VIEWS,
               loader=ParallelLoad(unreachable, 2))
    assert views_checksum(storage.view_store, ALL_VIEWS) == live
    with storage.db.transaction() as cur:  # and its half-built tables are gone
        cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
                    " AND tablename LIKE %s", ("%__rebuild",))
        assert cur.fetchone() == (0,)
    assert replay(storage.view_store, storage.event_source, ALL_VIEWS,
                  loader=ParallelLoad(settings, 2)) == live  # and the next one succeeds


def test_by_default_only_a_large_replay_on_postgresql_uses_workers(settings: Settings,
                                                                   tmp_path: Path) -> None:
    assert loader_for(settings, 10) is None
    assert loader_for(settings, 10, workers=1) is None
    parallel = loader_for(settings, 1_000_000)
    assert parallel is None or parallel.workers > 1  # None on a one-CPU machine
    explicit = loader_for(settings, 10, workers=2)
    assert explicit is not None and explicit.workers == 2
