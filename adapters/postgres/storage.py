"""Production storage: one PostgreSQL database (and schema) for the events, the views, the
key store and the tokens; the master key stays outside it."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import psycopg

from secrets_ledger.adapters.backend import Storage
from secrets_ledger.adapters.eventstore import IN_DOUBT, LedgerEvents, StoredStreams
from secrets_ledger.adapters.log_keys import LogKey
from secrets_ledger.adapters.masterkeys import MasterKeyring
from secrets_ledger.adapters.postgres.database import (
    MIGRATION_LOCK_ID,
    PostgresDatabase,
    ensure_schema,
    event_store_env,
)
from secrets_ledger.adapters.postgres.events import PostgresEventSource
from secrets_ledger.adapters.postgres.parallel_replay import loader_for
from secrets_ledger.adapters.postgres.recorder import (
    RECORDER_TOPIC,
    LedgerPostgresRecorder,
    standby_wait_watched,
)
from secrets_ledger.adapters.postgres.standby import STANDBY_FIRST, StandbyViewQueries
from secrets_ledger.adapters.postgres.tlog import PostgresLogRows
from secrets_ledger.adapters.postgres.values import PostgresValueLookups
from secrets_ledger.adapters.postgres.viewstore import PostgresViewStore
from secrets_ledger.adapters.sql.changes import SqlChangeRows
from secrets_ledger.adapters.sql.keys import SqlKeyRows
from secrets_ledger.adapters.sql.migrations import migrate
from secrets_ledger.adapters.sql.processes import SqlProcesses
from secrets_ledger.adapters.sql.tlog import log_ddl
from secrets_ledger.adapters.sql.tokens import SqlTokenRows
from secrets_ledger.adapters.sql.views import SqlViewQueries
from secrets_ledger.adapters.tlog_appender import LogAppender, StagedLog
from secrets_ledger.core.settings import Settings


class PostgresStreams(StoredStreams):
    """The recorder (``LedgerPostgresRecorder``) stores the data keys in the events'
    transaction: they commit together or not at all, in one round trip."""

    def save_batch(self, aggregates: Sequence[Any],
                   data_keys: Sequence[tuple[str, str, int, str]], log: StagedLog) -> None:
        self.events.save(*aggregates, data_keys=data_keys, log=log)

    def durable(self) -> None:
        recorder = self.events.recorder
        assert isinstance(recorder, LedgerPostgresRecorder)
        durable_commits(recorder)


def durable_commits(recorder: LedgerPostgresRecorder) -> None:
    """Returns once every commit its server shows is as safe as an acknowledged one.

    A commit is visible on its server before its synchronous standby has it once its
    wait for the standby was cut short (cancelled, or the server restarted: success with
    a warning, or a lost connection): a commit found after a lost connection, a change
    read for the feed or a log's head read for a checkpoint may then still be lost in a
    failover. A commit of our own waits for the standby past every earlier one; if that
    wait is cut short too, the outcome is still in doubt, and the caller asks again.
    Without a synchronous standby (none configured, or pg_auto_failover's single-copy
    ``wait_primary``) there is nothing to wait for, and no commit is made.
    """
    with recorder.datastore.get_connection() as conn, standby_wait_watched(conn) as cut_short:
        # A commit waits for the standby only if its transaction wrote to the log before
        # its commit record (``SELECT txid_current()`` alone commits at once): a
        # transactional message, which nothing decodes, is the smallest such write.
        conn.execute("SELECT CASE WHEN current_setting('synchronous_standby_names') <> ''"
                     " THEN pg_logical_emit_message(true, 'secrets-ledger', '') END")
    if cut_short:
        raise IN_DOUBT[0]("the wait for the synchronous standby was cut short")


KEY_ORDER = 'key COLLATE "C"'  # keys compared by bytes, as on SQLite


def open_postgres(settings: Settings, url: str, *, run_migrations: bool) -> Storage:
    schema = settings.database_schema
    ensure_schema(url, schema)
    db = PostgresDatabase(url, schema, settings.pool_size)
    try:
        if run_migrations:
            migrate(db)
        env = event_store_env(url, schema, settings.pool_size, RECORDER_TOPIC)
        # The library creates its tables itself; do it under the migration lock so that
        # two processes starting together do not race on CREATE TABLE.
        with db.transaction() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
            events = LedgerEvents(env=env)
            for statement in log_ddl("BYTEA"):  # beside the events: one transaction
                cur.execute(statement)
        master = MasterKeyring.from_settings(settings)
    except BaseException:
        db.close()
        raise
    source = PostgresEventSource(events)
    key_rows = SqlKeyRows(db, SqlProcesses(db))
    recorder = events.recorder
    assert isinstance(recorder, LedgerPostgresRecorder)
    durable = partial(durable_commits, recorder)
    log_rows = PostgresLogRows(db, f"SELECT max(notification_id) FROM {source.table}",
                               durable)
    streams = PostgresStreams(events, LogAppender(log_rows), source.read,
                              settings.store_retry_timeout)
    views = SqlViewQueries(db, KEY_ORDER, durable)
    closers = []
    if settings.read_from_standby:
        standby = PostgresDatabase(url, schema, settings.pool_size, STANDBY_FIRST)
        closers.append(standby.close)
        views = StandbyViewQueries(db, standby, KEY_ORDER, durable,
                                   settings.read_your_writes_timeout)
    return Storage(settings, db, events, streams,
                   key_rows, master, SqlTokenRows(db), views,
                   PostgresValueLookups(db, source.table), PostgresViewStore(db), source,
                   replay_loader=lambda events, workers: loader_for(settings, events, workers),
                   log_rows=log_rows, log_key=LogKey(settings),
                   change_rows=SqlChangeRows(db, db, one_database=True, durable=durable),
                   closers=closers, unreachable=(psycopg.OperationalError, *IN_DOUBT))
