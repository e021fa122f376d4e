"""The event store's PostgreSQL recorder: a batch's events and data keys in one transaction.

The recorder sends the whole transaction as one simple query of SQL literals, so these
tests check what that must not change: everything or nothing is stored, a conflict
leaves the connection usable, arbitrary bytes and quotes round-trip exactly, and the
notification ids come back in order. PostgreSQL only: on SQLite the key store is
another file and the library's own recorder stores the events.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

from secrets_ledger.adapters.eventstore import LedgerEvents
from secrets_ledger.adapters.postgres.recorder import LedgerPostgresRecorder
from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.domain.tenant import Tenant, tenant_id_for
from secrets_ledger.domain.times import utc_now
from secrets_ledger.runtime import LedgerRuntime
from tests.conftest import PG_URL, make_settings


@pytest.fixture
def pg_runtime(tmp_path: Path) -> Iterator[LedgerRuntime]:
    schema = f"t_{uuid4().hex[:12]}"
    rt = LedgerRuntime(make_settings("postgres", tmp_path / "data", schema), follow=False)
    yield rt
    rt.close()
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def recorder_of(rt: LedgerRuntime) -> LedgerPostgresRecorder:
    recorder = rt.storage.events.recorder
    assert isinstance(recorder, LedgerPostgresRecorder)
    return recorder


def data_key_ids(rt: LedgerRuntime) -> set[str]:
    with rt.storage.db.transaction() as cur:
        cur.execute("SELECT dek_id FROM data_keys")
        return {str(row[0]) for row in cur.fetchall()}


def stored_event(version: int, state: bytes, originator_id: str | None = None) -> StoredEvent:
    return StoredEvent(originator_id=originator_id or str(uuid4()), originator_version=version,
                       topic="domain.tenant:Tenant.SecretVersionsWritten", state=state)


def test_events_and_data_keys_are_stored_together_with_their_notification_ids(
        pg_runtime: LedgerRuntime) -> None:
    recorder = recorder_of(pg_runtime)
    first = pg_runtime.storage.event_source.max_position()
    events = [stored_event(1, b'{"a":1}'), stored_event(1, b'{"b":2}'), stored_event(1, b"{}")]
    rows = [(str(uuid4()), str(uuid4()), 1, "d3JhcHBlZA=="),
            (str(uuid4()), str(uuid4()), 2, "eA==")]
    ids = recorder.insert_events(events, data_keys=rows)
    assert ids is not None
    assert len(ids) == 3
    assert ids == sorted(ids)
    assert ids[0] > first
    assert {row[0] for row in rows} <= data_key_ids(pg_runtime)
    notifications = recorder.select_notifications(start=first, limit=10,
                                                  inclusive_of_start=False)
    assert [n.id for n in notifications] == ids
    assert [n.state for n in notifications] == [e.state for e in events]


def test_a_conflicting_batch_stores_neither_its_events_nor_its_data_keys(
        pg_runtime: LedgerRuntime) -> None:
    recorder = recorder_of(pg_runtime)
    taken = stored_event(1, b"{}")
    recorder.insert_events([taken])
    before = pg_runtime.storage.event_source.max_position()
    fresh = stored_event(1, b"{}")
    key = (str(uuid4()), str(uuid4()), 1, "eA==")
    with pytest.raises(IntegrityError):
        recorder.insert_events([fresh, taken], data_keys=[key])
    assert key[0] not in data_key_ids(pg_runtime)
    assert recorder.select_events(fresh.originator_id) == []
    assert pg_runtime.storage.event_source.max_position() == before
    # The connection went back to the pool idle: the next batch is stored.
    assert recorder.insert_events([fresh], data_keys=[key])
    assert key[0] in data_key_ids(pg_runtime)


def test_arbitrary_bytes_and_quotes_round_trip_exactly(pg_runtime: LedgerRuntime) -> None:
    recorder = recorder_of(pg_runtime)
    state = bytes(range(256)) + b"'\\\"; DROP TABLE x; --" + "é€".encode()
    event = stored_event(1, state)
    wrapped = "it's \\ a ' quote; --"
    key = (str(uuid4()), "tenant'; --", 7, wrapped)
    recorder.insert_events([event], data_keys=[key])
    [stored] = recorder.select_events(event.originator_id)
    assert stored.state == state
    assert stored.topic == event.topic
    with pg_runtime.storage.db.transaction() as cur:
        cur.execute("SELECT tenant_id, key_version, wrapped FROM data_keys WHERE dek_id = %s",
                    (key[0],))
        assert cur.fetchone() == (key[1], 7, wrapped)


def test_data_keys_alone_are_stored(pg_runtime: LedgerRuntime) -> None:
    key = (str(uuid4()), str(uuid4()), 1, "eA==")
    assert recorder_of(pg_runtime).insert_events([], data_keys=[key]) is None
    assert key[0] in data_key_ids(pg_runtime)


def test_a_tenant_saved_through_the_application_reads_back(pg_runtime: LedgerRuntime) -> None:
    events: LedgerEvents = pg_runtime.storage.events
    tenant = Tenant.open("recorded", RequestContext("tok", "req"), utc_now())
    [recording] = events.save(tenant)
    assert recording.notification.id > 0
    loaded = events.repository.get(tenant_id_for("recorded"))
    assert loaded.head == tenant.head
    assert loaded.version == 1
