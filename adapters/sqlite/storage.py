"""The embedded default: ``events.sqlite`` (the event store) and ``ledger.sqlite`` (views,
key store, tokens) in the data directory, created on first use."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from secrets_ledger.adapters.backend import Storage
from secrets_ledger.adapters.eventstore import (
    IN_DOUBT,
    LedgerEvents,
    LibraryEventSource,
    StoredStreams,
)
from secrets_ledger.adapters.log_keys import LogKey
from secrets_ledger.adapters.masterkeys import MasterKeyring
from secrets_ledger.adapters.sql.changes import SqlChangeRows
from secrets_ledger.adapters.sql.keys import SqlKeyRows
from secrets_ledger.adapters.sql.migrations import migrate
from secrets_ledger.adapters.sql.processes import SqlProcesses
from secrets_ledger.adapters.sql.tlog import SqlLogRows
from secrets_ledger.adapters.sql.tokens import SqlTokenRows
from secrets_ledger.adapters.sql.views import SqlViewQueries
from secrets_ledger.adapters.sqlite.backup import back_up
from secrets_ledger.adapters.sqlite.database import SQLiteDatabase, use_wal
from secrets_ledger.adapters.sqlite.files import WalLimit, make_private
from secrets_ledger.adapters.sqlite.recorder import RECORDER_TOPIC
from secrets_ledger.adapters.sqlite.values import SQLiteValueLookups
from secrets_ledger.adapters.sqlite.viewstore import SQLiteViewStore
from secrets_ledger.adapters.tlog_appender import LogAppender, StagedLog
from secrets_ledger.core.settings import Settings

EVENTS_FILE = "events.sqlite"
VIEWS_FILE = "ledger.sqlite"


class SQLiteStreams(StoredStreams):
    """The data keys live in another file than the events: they commit first, so that no
    stored event lacks its key (a key whose event then fails to save opens nothing)."""

    def __init__(self, events: LedgerEvents, log: LogAppender, key_rows: SqlKeyRows) -> None:
        super().__init__(events, log, LibraryEventSource(events).read)
        self.key_rows = key_rows

    def save_batch(self, aggregates: Sequence[Any],
                   data_keys: Sequence[tuple[str, str, int, str]], log: StagedLog) -> None:
        self.key_rows.store_data_keys(data_keys)
        self.events.save(*aggregates, log=log)


def open_sqlite(settings: Settings, *, run_migrations: bool) -> Storage:
    events_file, views_file = settings.data_dir / EVENTS_FILE, settings.data_dir / VIEWS_FILE
    for database in (events_file, views_file):
        make_private(database)
    db = SQLiteDatabase(views_file)
    try:
        if run_migrations:
            migrate(db)
        # The library switches its file to WAL on every connection and fails at once if
        # another process is switching it too: switch it first, with retries.
        first = sqlite3.connect(events_file, timeout=30.0)
        try:
            use_wal(first)
        finally:
            first.close()
        events = LedgerEvents(env={"PERSISTENCE_MODULE": "eventsourcing.sqlite",
                                   "SQLITE_DBNAME": str(events_file),
                                   "SQLITE_LOCK_TIMEOUT": "30",
                                   "APPLICATION_RECORDER_TOPIC": RECORDER_TOPIC})
        master = MasterKeyring.from_settings(settings)
    except BaseException:
        db.close()
        raise
    key_rows = SqlKeyRows(db, SqlProcesses(db))
    lookups = SQLiteValueLookups(views_file, events_file)
    log_db = SQLiteDatabase(events_file)  # the logs live beside the events, in their file
    log_rows = SqlLogRows(log_db, "SELECT max(rowid) FROM stored_events")
    streams = SQLiteStreams(events, LogAppender(log_rows), key_rows)
    return Storage(settings, db, events, streams,
                   key_rows, master, SqlTokenRows(db), SqlViewQueries(db, key_order="key"),
                   lookups, SQLiteViewStore(db), LibraryEventSource(events),
                   replay_loader=lambda events, workers: None, log_rows=log_rows,
                   log_key=LogKey(settings),
                   change_rows=SqlChangeRows(db, log_db, one_database=False),
                   backup=lambda into: back_up((events_file, views_file), into),
                   closers=[lookups.close, log_db.close],
                   maintenance=[WalLimit(events_file), WalLimit(views_file)],
                   unreachable=(sqlite3.OperationalError, *IN_DOUBT))
