"""Where everything is stored: the one place that routes the ledger to its backend.

The event store is an ``eventsourcing`` application (``LedgerEvents``); the project's
own tables (views, key store, tokens) live beside it in the same PostgreSQL database,
or in ``ledger.sqlite`` next to ``events.sqlite`` in the data directory.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import Aggregate, DomainEvent
from eventsourcing.persistence import Recording

from secrets_ledger.domain.tenant import Tenant
from secrets_ledger.service.database import (
    MIGRATION_LOCK_ID,
    Database,
    PostgresDatabase,
    SQLiteDatabase,
    ensure_schema,
    migrate,
    postgres_env,
    use_wal,
)
from secrets_ledger.service.event_source import StoreEventSource
from secrets_ledger.service.keystore import KeyStore, MasterKeyring
from secrets_ledger.service.settings import Settings


class LedgerEvents(Application):  # type: ignore[type-arg]
    """The event store of every tenant stream (tables ``ledger_events`` on PostgreSQL)."""

    name = "Ledger"
    # Loading a tenant replays at most this many events after its latest snapshot.
    snapshotting_intervals = {Tenant: 200}

    def save(self, *objs: Any, **kwargs: Any) -> list[Recording[UUID]]:
        """``Application.save``, step for step, for less CPU per saved event.

        The library tells aggregates from events with ``isinstance`` against runtime
        protocols, which costs several microseconds per object on Python 3.11; the
        ledger saves its own ``Aggregate`` and ``DomainEvent`` subclasses, told apart
        here by class. Anything else goes through the library's own collection.
        """
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        for obj in objs:
            if isinstance(obj, Aggregate):
                processing_event.events.extend(obj.collect_events())
                processing_event.aggregates[obj.id] = obj
            elif isinstance(obj, DomainEvent):
                processing_event.events.append(obj)
            else:
                processing_event.collect_events(obj)
        processing_event.saved_kwargs.update(kwargs)
        recordings: list[Recording[UUID]] = self._record(processing_event)
        self._take_snapshots(processing_event)
        self._notify(recordings)
        self.notify(processing_event.events)  # the library's deprecated hook, a no-op
        return recordings

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        """Snapshots each saved aggregate one of whose new events is at a multiple of its
        interval, as the library does, but from the aggregate in hand.

        The library reloads the aggregate from the store at that event's version (a
        snapshot and up to ``interval`` events decoded and replayed) while the writer
        holds every waiting caller. The aggregate being saved is that state or a later
        one (it holds exactly the events just stored), and a snapshot at a later version
        loads the same way: the latest snapshot, then the events after it.
        """
        if not self.snapshots or not self.snapshotting_intervals:
            return
        due: dict[UUID, Any] = {}
        for event in processing_event.events:
            aggregate = processing_event.aggregates.get(event.originator_id)
            if aggregate is None:
                continue
            interval = self.snapshotting_intervals.get(type(aggregate))
            if interval is not None and event.originator_version % interval == 0:
                due[event.originator_id] = aggregate
        if not due:
            return
        snapshots = []
        for aggregate in due.values():
            snapshot_class = getattr(type(aggregate), "Snapshot", type(self).snapshot_class)
            if snapshot_class is None:  # the library's path says what is missing
                self.take_snapshot(aggregate.id)
                continue
            snapshots.append(snapshot_class.take(aggregate))
        if snapshots:
            self.snapshots.put(snapshots)


@dataclass
class Storage:
    settings: Settings
    db: Database
    events: LedgerEvents
    keys: KeyStore

    @property
    def source(self) -> StoreEventSource:
        return StoreEventSource(self.events)

    def close(self) -> None:
        self.events.close()
        self.db.close()


def _event_store_env(settings: Settings) -> dict[str, str]:
    if settings.database_url is not None:
        return postgres_env(settings.database_url.get_secret_value(),
                            settings.database_schema, settings.pool_size)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": str(settings.data_dir / "events.sqlite"),
        "SQLITE_LOCK_TIMEOUT": "30",
    }


def open_storage(settings: Settings, *, run_migrations: bool = True) -> Storage:
    """Connects to the configured backend, applying migrations first unless told not to."""
    # 0700: the master key may live here, and nobody else needs to list the stores.
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    db: Database
    if settings.database_url is not None:
        url = settings.database_url.get_secret_value()
        ensure_schema(url, settings.database_schema)
        db = PostgresDatabase(url, settings.database_schema, settings.pool_size)
    else:
        db = SQLiteDatabase(settings.data_dir / "ledger.sqlite")
    try:
        if run_migrations:
            migrate(db)
        events = _open_event_store(settings, db)
        master = MasterKeyring(
            settings.data_dir,
            settings.master_key.get_secret_value() if settings.master_key else None,
            settings.new_master_key.get_secret_value() if settings.new_master_key else None,
        )
    except BaseException:
        db.close()
        raise
    return Storage(settings, db, events, KeyStore(db, master))


def _open_event_store(settings: Settings, db: Database) -> LedgerEvents:
    env = _event_store_env(settings)
    if db.dialect == "postgres":
        # The library creates its tables itself; do it under the migration lock so
        # that two processes starting together do not race on CREATE TABLE.
        with db.transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
            events = LedgerEvents(env=env)
        return events
    # The library switches its file to WAL on every connection and fails at once if
    # another process is switching it too: switch it first, with retries.
    first = sqlite3.connect(settings.data_dir / "events.sqlite", timeout=30.0)
    try:
        use_wal(first)
    finally:
        first.close()
    return LedgerEvents(env=env)
