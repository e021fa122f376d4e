"""Production storage: one PostgreSQL database (and schema) for the events, the views, the
key store and the tokens; the master key stays outside it."""

from __future__ import annotations

from collections.abc import Sequence
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
from secrets_ledger.adapters.postgres.recorder import RECORDER_TOPIC, LedgerPostgresRecorder
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
        """A commit is visible on its server before its synchronous standby has it: a
        commit found after a lost connection may still be lost in the failover under
        way. A commit of our own (``txid_current()`` gives it a commit record) waits for
        the standby past every earlier one; if that wait is cut short (the server shut
        down, or the wait cancelled: success with a warning) the outcome is still in
        doubt, and the caller asks again."""
        cut_short: list[str] = []
        recorder = self.events.recorder
        assert isinstance(recorder, LedgerPostgresRecorder)
        with recorder.datastore.get_connection() as conn:
            def notice(diagnostic: psycopg.errors.Diagnostic) -> None:
                if "synchronous replication" in (diagnostic.message_primary or ""):
                    cut_short.append("cancelled")
            conn.add_notice_handler(notice)
            try:
                conn.execute("SELECT txid_current()")  # autocommit: a commit of its own
            finally:
                conn.remove_notice_handler(notice)
        if cut_short:
            raise IN_DOUBT[0]("the wait for the synchronous standby was cut short")


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
    log_rows = PostgresLogRows(db, f"SELECT max(notification_id) FROM {source.table}")
    streams = PostgresStreams(events, LogAppender(log_rows), source.read,
                              settings.store_retry_timeout)
    return Storage(settings, db, events, streams,
                   key_rows, master, SqlTokenRows(db),
                   SqlViewQueries(db, key_order='key COLLATE "C"'),
                   PostgresValueLookups(db, source.table), PostgresViewStore(db), source,
                   replay_loader=lambda events, workers: loader_for(settings, events, workers),
                   log_rows=log_rows, log_key=LogKey(settings),
                   change_rows=SqlChangeRows(db, db, one_database=True),
                   unreachable=(psycopg.OperationalError, *IN_DOUBT))
