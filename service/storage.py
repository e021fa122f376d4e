"""Where everything is stored: the one place that routes the ledger to its backend.

The event store is an ``eventsourcing`` application (``LedgerEvents``); the project's
own tables (views, key store, tokens) live beside it in the same PostgreSQL database,
or in ``ledger.sqlite`` next to ``events.sqlite`` in the data directory.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import Aggregate, DomainEvent
from eventsourcing.persistence import Mapper, Recording, StoredEvent
from eventsourcing.utils import resolve_topic

from domain.tenant import Tenant
from service.database import (
    MIGRATION_LOCK_ID,
    Database,
    PostgresDatabase,
    SQLiteDatabase,
    ensure_schema,
    migrate,
    postgres_env,
    use_wal,
)
from service.keystore import KeyStore, MasterKeyring
from service.settings import Settings


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


class StoreEventSource:
    """Reads notifications after a position and decodes them to domain events."""

    def __init__(self, app: LedgerEvents) -> None:
        self.app = app
        self.decode = EventDecoder(app.mapper)

    def max_position(self) -> int:
        return int(self.app.recorder.max_notification_id() or 0)

    def read(self, after: int, limit: int) -> Sequence[tuple[int, Any]]:
        notifications = self.app.recorder.select_notifications(
            start=after, limit=limit, inclusive_of_start=False
        )
        decode = self.decode
        return [(n.id, decode(n)) for n in notifications]

    def read_part(self, after: int, limit: int, part: int, parts: int, until: int
                  ) -> Sequence[tuple[int, Any]]:
        """``read`` of the events whose stream is in part ``part`` of ``parts`` (by the last
        byte of its id), up to position ``until``: every event of a tenant's stream is in
        the same part, in order, so parts can be projected side by side (PostgreSQL).

        Positions are scanned in windows of ``limit`` (an index range scan; with a
        filter and a LIMIT instead, the planner sorts every later row for each page)
        until one holds events of this part.
        """
        recorder = self.app.recorder
        schema, table = recorder.datastore.schema, recorder.events_table_name  # type: ignore[attr-defined]
        statement = (
            "SELECT notification_id, originator_id, originator_version, topic, state"
            f' FROM "{schema}"."{table}" WHERE notification_id > %s AND notification_id <= %s'
            " AND get_byte(uuid_send(originator_id), 15) %% %s = %s ORDER BY notification_id")
        decode = self.decode
        with recorder.datastore.get_connection() as conn, conn.cursor() as cursor:  # type: ignore[attr-defined]
            while after < until:
                end = min(after + limit, until)
                cursor.execute(statement, (after, end, parts, part))
                rows = cursor.fetchall()
                if rows:
                    return [(row["notification_id"],
                             decode(StoredEvent(row["originator_id"], row["originator_version"],
                                                row["topic"], bytes(row["state"]))))
                            for row in rows]
                after = end
        return []


class EventDecoder:
    """The library mapper's ``to_domain_event``, several times faster for the ledger's events.

    The mapper decodes JSON with a Python hook called for every object. The ledger's
    events hold JSON-native values except their timestamp, so a stored state in which
    ``"_type_"`` occurs once is plain JSON plus that timestamp: orjson decodes it alone.
    Anything else (another transcoded value, an upcast class, a cipher or a compressor
    on the mapper, JSON orjson refuses) goes through the library's own mapper.
    """

    def __init__(self, mapper: Mapper[Any]) -> None:
        self.mapper = mapper
        self.plain = mapper.cipher is None and mapper.compressor is None
        self.classes: dict[str, type[Any] | None] = {}

    def __call__(self, stored: StoredEvent) -> Any:
        cls = self._fast_class(stored.topic)
        state = stored.state
        if cls is None or state.count(b'"_type_"') != 1:
            return self.mapper.to_domain_event(stored)
        try:
            fields = orjson.loads(state)
        except orjson.JSONDecodeError:
            return self.mapper.to_domain_event(stored)
        moment = fields.get("timestamp")
        if not isinstance(moment, dict) or moment.get("_type_") != "datetime_iso":
            return self.mapper.to_domain_event(stored)
        fields["timestamp"] = datetime.fromisoformat(moment["_data_"])
        originator_id = stored.originator_id
        fields["originator_id"] = (originator_id if isinstance(originator_id, UUID)
                                   else UUID(str(originator_id)))
        fields["originator_version"] = stored.originator_version
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", fields)
        return event

    def _fast_class(self, topic: str) -> type[Any] | None:
        try:
            return self.classes[topic]
        except KeyError:
            cls = resolve_topic(topic)
            fast = self.plain and getattr(cls, "class_version", 1) == 1
            self.classes[topic] = cls if fast else None
            return self.classes[topic]


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
