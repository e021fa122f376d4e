"""The database connection lost mid-request, as in a failover: every write is
acknowledged only if stored, stored once, and waited out rather than failed while the
server is away for a moment.

PostgreSQL only: SQLite has no connection to lose. The faults are real (``LossyProxy``
drops real TCP connections to the real server); ``tests.e2e.test_failover_drill`` runs
the whole drill through an actual primary failover.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from secrets_ledger.core.ports import AuditFilter, StoreUnreachable
from secrets_ledger.core.settings import Settings
from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.runtime import LedgerRuntime
from tests.conftest import PG_URL
from tests.support import Blocking
from tests.tcp_proxy import LossyProxy

# What the events' INSERT sends (the query) and what the server answers once it committed.
EVENTS_INSERT = b"INSERT INTO"
COMMITTED = b"INSERT 0 "


@pytest.fixture
def proxy() -> Iterator[LossyProxy]:
    parts = urlsplit(PG_URL)
    lossy = LossyProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    yield lossy
    lossy.close()


@pytest.fixture
def ledger(proxy: LossyProxy, tmp_path: Path) -> Iterator[Blocking]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    # One connection per pool: the one a fault hits is the one the test means.
    settings = Settings(data_dir=tmp_path / "data", database_url=proxy.url(PG_URL),
                        database_schema=schema, pool_size=1, store_retry_timeout=20)
    runtime = LedgerRuntime(settings)
    try:
        yield Blocking(runtime.ledger)
    finally:
        runtime.close()
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def _ctx(**extra: str) -> RequestContext:
    return RequestContext(actor="tok_test", request_id=f"req-{uuid.uuid4().hex[:8]}", **extra)


@pytest.fixture
def tenant(ledger: Blocking) -> str:
    ledger.open_tenant("acme", _ctx())
    ledger.put_secret("acme", "warm", "up", None, None, _ctx())  # keys and caches made
    return "acme"


def test_a_write_whose_commit_answer_is_lost_is_acknowledged_and_stored_once(
        ledger: Blocking, tenant: str, proxy: LossyProxy) -> None:
    proxy.cut_next_reply(COMMITTED)
    written = ledger.put_secret(tenant, "db/password", "s3cret", None, None, _ctx())
    assert proxy.cuts == 1
    assert written.version == 1
    current, versions = ledger.list_versions(tenant, "db/password")
    assert (current, [v.version for v in versions]) == (1, [1])
    assert ledger.get_secret(tenant, "db/password", _ctx()).value == "s3cret"


def test_a_read_whose_record_commit_answer_is_lost_is_answered_and_recorded_once(
        ledger: Blocking, tenant: str, proxy: LossyProxy) -> None:
    proxy.cut_next_reply(COMMITTED)
    assert ledger.get_secret(tenant, "warm", _ctx()).value == "up"
    assert proxy.cuts == 1
    assert len(ledger.audit(tenant, AuditFilter(key="warm", action="read")).items) == 1


def test_a_write_whose_request_never_reached_the_server_is_stored_once(
        ledger: Blocking, tenant: str, proxy: LossyProxy) -> None:
    proxy.cut_next_request(EVENTS_INSERT)
    written = ledger.put_secret(tenant, "db/password", "s3cret", None, None, _ctx())
    assert proxy.cuts == 1
    assert written.version == 1
    assert [v.version for v in ledger.list_versions(tenant, "db/password")[1]] == [1]


def test_a_write_waits_while_the_database_is_away_then_is_stored_once(
        ledger: Blocking, tenant: str, proxy: LossyProxy) -> None:
    outcome: list[object] = []
    with proxy.down():
        writer = threading.Thread(target=lambda: outcome.append(
            ledger.put_secret(tenant, "db/password", "s3cret", None, None, _ctx())))
        writer.start()
        time.sleep(2.0)
        assert not outcome  # waiting, not failed
    writer.join(timeout=30)
    assert [getattr(result, "version", result) for result in outcome] == [1]
    assert [v.version for v in ledger.list_versions(tenant, "db/password")[1]] == [1]


def test_a_query_while_the_database_is_away_is_unavailable_not_an_internal_error(
        ledger: Blocking, tenant: str, proxy: LossyProxy) -> None:
    with proxy.down(), pytest.raises(StoreUnreachable):
        ledger.list_keys(tenant)
    assert [item.key for item in ledger.list_keys(tenant).items] == ["warm"]
