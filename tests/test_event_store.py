"""The event store application (``LedgerEvents``): saving and snapshotting, on both backends.

``LedgerEvents.save`` follows ``Application.save`` step for step and snapshots from the
aggregate being saved rather than reloading it; these tests check that what it stores
loads back to exactly the aggregate that was saved.
"""

from __future__ import annotations

import sqlite3
from uuid import uuid4

import psycopg

from secrets_ledger.adapters.eventstore import LedgerEvents
from secrets_ledger.domain.changes import RequestContext, SealedValue, SetValue
from secrets_ledger.domain.reads import ReadRecord, ValueReads
from secrets_ledger.domain.tenant import Tenant, tenant_id_for
from secrets_ledger.domain.times import utc_now
from secrets_ledger.runtime import LedgerRuntime

CTX = RequestContext(actor="tok_test", request_id="req-store")


def seal(key: str, version: int, key_version: int) -> SealedValue:
    return SealedValue(ciphertext=f"c-{key}-{version}", dek_id=str(uuid4()))


def write(tenant: Tenant, count: int, start: int = 0) -> None:
    for n in range(start, start + count):
        tenant.write([SetValue(f"k{n % 7}", metadata={"n": str(n)})], seal, CTX, utc_now())


def state(tenant: Tenant) -> tuple[object, ...]:
    return (tenant.id, tenant.version, tenant.head, tenant.name, tenant.key_version,
            tenant.shredded, tenant.secrets, tenant.created_on, tenant.modified_on)


def reloaded(runtime: LedgerRuntime, name: str) -> Tenant:
    fresh = LedgerEvents(env=runtime.storage.events.env)
    try:
        tenant = fresh.repository.get(tenant_id_for(name))
        assert isinstance(tenant, Tenant)
        return tenant
    finally:
        fresh.close()


def snapshot_versions(events: LedgerEvents, name: str) -> list[int]:
    assert events.snapshots is not None
    return [s.originator_version for s in events.snapshots.get(tenant_id_for(name))]


def test_saved_aggregates_and_events_are_stored_in_order(runtime: LedgerRuntime) -> None:
    events = runtime.storage.events
    a, b = Tenant.open("store-a", CTX, utc_now()), Tenant.open("store-b", CTX, utc_now())
    write(a, 2)
    read = ValueReads.record([ReadRecord(str(a.id), "k0", 1, "tok_test", "req-read")],
                             utc_now())
    recordings = events.save(a, None, b, read)
    assert [(r.domain_event.originator_id, r.domain_event.originator_version)
            for r in recordings] == [(a.id, 1), (a.id, 2), (a.id, 3), (b.id, 1), (read.id, 1)]
    ids = [r.notification.id for r in recordings]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert not a.pending_events
    assert not b.pending_events
    assert state(reloaded(runtime, "store-a")) == state(a)
    assert state(reloaded(runtime, "store-b")) == state(b)


def test_a_snapshot_is_taken_when_an_event_reaches_the_interval(runtime: LedgerRuntime) -> None:
    events = runtime.storage.events
    tenant = Tenant.open("snapped", CTX, utc_now())
    events.save(tenant)
    write(tenant, 198)  # versions 2..199
    events.save(tenant)
    assert snapshot_versions(events, "snapped") == []
    write(tenant, 1, 198)  # version 200, alone
    events.save(tenant)
    assert snapshot_versions(events, "snapped") == [200]
    assert state(reloaded(runtime, "snapped")) == state(tenant)


def test_a_batch_across_the_interval_snapshots_the_state_it_saved(
        runtime: LedgerRuntime) -> None:
    events = runtime.storage.events
    tenant = Tenant.open("across", CTX, utc_now())
    write(tenant, 196)  # versions 2..197
    events.save(tenant)
    write(tenant, 8, 196)  # versions 198..205, one save
    events.save(tenant)
    [version] = snapshot_versions(events, "across")
    assert version == 205
    assert state(reloaded(runtime, "across")) == state(tenant)
    write(tenant, 3, 204)  # a later write loads the snapshot, then the events after it
    events.save(tenant)
    assert state(reloaded(runtime, "across")) == state(tenant)
    assert reloaded(runtime, "across").version == 208


def _rename_stored_topics(runtime: LedgerRuntime, old: str, new: str) -> int:
    """Rewrites the stored topics (and snapshots' class names) as an older release named
    them, straight in the event store's tables."""
    settings = runtime.storage.settings
    tables = ("stored_events", "stored_snapshots") if settings.database_url is None else (
        "ledger_events", "ledger_snapshots")
    renamed = 0
    if settings.database_url is None:
        with sqlite3.connect(settings.data_dir / "events.sqlite") as conn:
            for table in tables:
                renamed += conn.execute(
                    f"UPDATE {table} SET topic = replace(topic, ?, ?),"
                    " state = CAST(replace(CAST(state AS TEXT), ?, ?) AS BLOB)",
                    (old, new, old, new)).rowcount
        return renamed
    with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True,
                         options=f"-c search_path={settings.database_schema}") as conn:
        for table in tables:
            renamed += conn.execute(
                f"UPDATE {table} SET topic = replace(topic, %s, %s),"  # type: ignore[arg-type]
                " state = convert_to(replace(convert_from(state, 'UTF8'), %s, %s), 'UTF8')",
                (old, new, old, new)).rowcount
    return renamed


def test_streams_stored_under_the_unpackaged_module_names_still_load(
        runtime: LedgerRuntime) -> None:
    events = runtime.storage.events
    tenant = Tenant.open("legacy", CTX, utc_now())
    write(tenant, 201)  # a snapshot at 200 names the aggregate's class too
    events.save(tenant)
    expected = state(tenant)
    assert _rename_stored_topics(runtime, "secrets_ledger.domain.", "domain.") >= 202
    assert state(reloaded(runtime, "legacy")) == expected
