"""The event store: an ``eventsourcing`` application holding every tenant's stream and the
read records, and the core's port onto it (``ports.TenantStreams``). What differs between
backends is how a batch's new data keys are stored with its events (``save_batch``) and
how the projections read positions (``LibraryEventSource`` on SQLite, binary reads on
PostgreSQL)."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from functools import partial
from typing import Any, cast
from uuid import UUID

import orjson
from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate, DomainEvent
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Mapper,
    OperationalError,
    Recording,
    StoredEvent,
)
from eventsourcing.utils import resolve_topic

from secrets_ledger.adapters.tlog_appender import LogAppender, StagedLog
from secrets_ledger.core.ports import ConcurrentAppend, StoreUnreachable, WrappedDataKey
from secrets_ledger.core.ports import StoredEvent as StoredRecord
from secrets_ledger.domain.errors import Unavailable
from secrets_ledger.domain.reads import ValueReads
from secrets_ledger.domain.tenant import Tenant

IN_DOUBT = (OperationalError, InterfaceError)
"""How the library reports a save whose connection failed: it may have committed."""


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


class StoredStreams(ABC):
    """``ports.TenantStreams`` over the application; ``save_batch`` is the backend's."""

    def __init__(self, events: LedgerEvents, log: LogAppender,
                 reader: Callable[[int, int], Sequence[tuple[int, Any]]],
                 resolve_seconds: float = 30.0) -> None:
        self.events = events
        self.resolve_seconds = resolve_seconds  # how long to ask whether a save committed
        self.recorder = events.recorder
        self.log = log
        self.reader = reader  # the backend's fast reader (the projections' event source)

    def load(self, tenant_id: UUID) -> Tenant | None:
        try:
            return cast(Tenant, self.events.repository.get(tenant_id))
        except AggregateNotFoundError:
            return None

    def newer_events(self, tenant: Tenant) -> list[Tenant.Event]:
        return cast(list[Tenant.Event], list(self.events.events.get(tenant.id,
                                                                    gt=tenant.version)))

    def save(self, tenants: Sequence[Tenant], reads: Sequence[ValueReads],
             data_keys: Sequence[WrappedDataKey]) -> None:
        rows = [(k.dek_id, k.tenant_id, k.key_version, k.wrapped) for k in data_keys]
        aggregates = [*tenants, *reads]
        # In store order: the tenants' events, then the read record (``save`` keeps it).
        events = [event for aggregate in aggregates for event in aggregate.pending_events]
        staged = self.log.stage(events)
        try:
            try:
                self.save_batch(aggregates, rows, staged)
            except IntegrityError:
                raise ConcurrentAppend from None
            except IN_DOUBT:
                if not events or not self._committed(events[0]):
                    raise StoreUnreachable("the database cannot be reached; retry") from None
        except BaseException:
            self.log.drop(list(staged.heads))
            raise
        self.log.stored(staged)

    def copy_in(self, records: Sequence[Any], data_keys: Sequence[tuple[str, str, int, str]]
                ) -> None:
        """Stores records copied from another tenant group as they were (their streams,
        versions and times), with their log leaves and data keys, in one transaction."""
        staged = self.log.stage(records)
        try:
            self.save_batch(records, data_keys, staged)
        except BaseException:
            self.log.drop(list(staged.heads))
            raise
        self.log.stored(staged)

    def _committed(self, first: Any) -> bool:
        """Whether a save whose connection failed committed after all, asked until the
        store answers (the new primary, after a failover): the batch is one transaction,
        so its first event, stored byte for byte, says that all of it is."""
        expected = self.events.mapper.to_stored_event(first)
        deadline = time.monotonic() + self.resolve_seconds
        delay = 0.05
        while True:
            try:
                found = self.recorder.select_events(first.originator_id,
                                                    gt=first.originator_version - 1,
                                                    lte=first.originator_version)
                if not found or found[0].state != expected.state:
                    return False
                self.durable()
                return True
            except IN_DOUBT:
                if time.monotonic() > deadline:
                    raise Unavailable(
                        "the database was lost while this write was committed and has not"
                        " answered since: it may be stored; retry it with the same"
                        " Idempotency-Key") from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def durable(self) -> None:
        """Returns once what this connection's server has committed is as safe as an
        acknowledged commit (on its synchronous standbys: see ``PostgresStreams``)."""
        return  # SQLite: one copy, on disk once committed

    @abstractmethod
    def save_batch(self, aggregates: Sequence[Any], data_keys: Sequence[tuple[str, str, int, str]],
                   log: StagedLog) -> None:
        """Saves the aggregates' events and their log leaves, storing the data keys the
        backend's way."""

    def head(self, tenant_id: UUID) -> int | None:
        latest = self.recorder.select_events(tenant_id, desc=True, limit=1)
        return latest[0].originator_version if latest else None

    def max_position(self) -> int:
        return int(self.recorder.max_notification_id() or 0)

    def stream(self, tenant_id: UUID) -> Iterable[StoredRecord]:
        decode = self.events.mapper.to_domain_event
        for stored in self.recorder.select_events(tenant_id):
            yield StoredRecord(0, tenant_id, stored.originator_version, stored.topic,
                               partial(decode, stored))

    def stored_after(self, position: int, limit: int) -> Sequence[StoredRecord]:
        decode = self.events.mapper.to_domain_event
        return [StoredRecord(n.id, UUID(str(n.originator_id)), n.originator_version, n.topic,
                             partial(decode, n))
                for n in self.recorder.select_notifications(start=position, limit=limit,
                                                            inclusive_of_start=False)]

    def decoded_after(self, position: int, limit: int) -> Sequence[tuple[int, Any]]:
        return self.reader(position, limit)

    def stored_event(self, stream_id: UUID, version: int) -> Any | None:
        found = self.recorder.select_events(stream_id, gt=version - 1, lte=version)
        return self.events.mapper.to_domain_event(found[0]) if found else None

    def event_at(self, position: int) -> Any | None:
        found = self.stored_after(position - 1, 1)
        if not found or found[0].position != position:
            return None
        event = found[0].decode()
        return event if isinstance(event, Tenant.Event) else None


class LibraryEventSource:
    """``projections.ports.EventSource`` through the library's own notification reads."""

    def __init__(self, events: LedgerEvents) -> None:
        self.recorder = events.recorder
        self.decode = EventDecoder(events.mapper)

    def max_position(self) -> int:
        return int(self.recorder.max_notification_id() or 0)

    def read(self, after: int, limit: int) -> Sequence[tuple[int, Any]]:
        notifications = self.recorder.select_notifications(start=after, limit=limit,
                                                           inclusive_of_start=False)
        decode = self.decode
        return [(n.id, decode(n)) for n in notifications]


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
        return self.from_row(stored.originator_id, stored.originator_version, stored.topic,
                             stored.state)

    def from_row(self, originator_id: Any, originator_version: int, topic: str,
                 state: bytes) -> Any:
        """The event of one stored row, without building the row's ``StoredEvent`` first."""
        cls = self._fast_class(topic)
        if cls is None or state.count(b'"_type_"') != 1:
            return self._by_mapper(originator_id, originator_version, topic, state)
        try:
            fields = orjson.loads(state)
        except orjson.JSONDecodeError:
            return self._by_mapper(originator_id, originator_version, topic, state)
        moment = fields.get("timestamp")
        if not isinstance(moment, dict) or moment.get("_type_") != "datetime_iso":
            return self._by_mapper(originator_id, originator_version, topic, state)
        fields["timestamp"] = datetime.fromisoformat(moment["_data_"])
        fields["originator_id"] = (originator_id if isinstance(originator_id, UUID)
                                   else UUID(str(originator_id)))
        fields["originator_version"] = originator_version
        event = object.__new__(cls)
        object.__setattr__(event, "__dict__", fields)
        return event

    def _by_mapper(self, originator_id: Any, originator_version: int, topic: str,
                   state: bytes) -> Any:
        return self.mapper.to_domain_event(
            StoredEvent(originator_id, originator_version, topic, state))

    def _fast_class(self, topic: str) -> type[Any] | None:
        try:
            return self.classes[topic]
        except KeyError:
            cls = resolve_topic(topic)
            fast = self.plain and getattr(cls, "class_version", 1) == 1
            self.classes[topic] = cls if fast else None
            return self.classes[topic]
