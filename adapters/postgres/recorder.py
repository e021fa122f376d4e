"""The event store's PostgreSQL recorder, extended to store a batch's data keys in the
same transaction as the batch's events.

A value's data key and the event holding its ciphertext then commit together or not
at all: no orphan keys after a conflict, and one durable commit per batch, not two.

The whole transaction is sent as ONE simple query, so it costs one round trip:

    INSERT INTO data_keys …; SET LOCAL lock_timeout …; LOCK TABLE events IN EXCLUSIVE
    MODE; NOTIFY …; INSERT INTO log_leaves …;
    INSERT INTO events … RETURNING notification_id

PostgreSQL runs the statements of one simple query as a single (implicit) transaction:
they commit together when the last one succeeds, and an error in any of them rolls all
of them back and leaves the connection idle. The statements, their order and the table
lock are the library's own (``PostgresApplicationRecorder.insert_events``), which sends
them in pipeline mode; that costs more client CPU per batch than the whole batch's
commands do. Values are written as SQL literals quoted by libpq (``PQescapeLiteral``),
by hex (bytea) or by their own canonical form (integers, UUIDs): nothing is spliced in
unquoted.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast
from uuid import UUID

import psycopg
from eventsourcing.persistence import (
    OperationalError,
    ProgrammingError,
    StoredEvent,
)
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresFactory
from eventsourcing.utils import Environment, EnvType
from psycopg import Connection, Cursor
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import Escaping
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composable, Identifier

from secrets_ledger.adapters.postgres.database import LIBPQ_OPTIONS, RECONNECT_SECONDS
from secrets_ledger.adapters.sql.tlog import INSERT_LEAF
from secrets_ledger.adapters.tlog_appender import StagedLog

DataKeyRow = tuple[str, str, int, str]  # dek_id, tenant_id, key_version, wrapped
_Statements = tuple[bytes, bytes, bytes, bytes]


class LedgerPostgresFactory(PostgresFactory):
    """The library's factory, whose pool also gets the URL's other connection options
    (``target_session_attrs`` for a failover pair, ``sslmode``...): the library takes
    host, port, user, password and database only."""

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        pool = self.datastore.pool
        assert isinstance(pool.kwargs, dict)  # the library's own: a dict
        # Before the pool's first connection (it opens on first use).
        pool.kwargs.update(conninfo_to_dict(self.env.get(LIBPQ_OPTIONS) or ""))
        pool.reconnect_timeout = RECONNECT_SECONDS


@contextmanager
def standby_wait_watched(conn: Connection[Any]) -> Iterator[list[str]]:
    """Notes, in the list it yields, a commit on ``conn`` whose wait for the synchronous
    standby was cut short (cancelled, or the server shutting down): PostgreSQL answers
    such a commit with success and a warning, and it is on this server only."""
    cut_short: list[str] = []

    def notice(diagnostic: psycopg.errors.Diagnostic) -> None:
        if "synchronous replication" in (diagnostic.message_primary or ""):
            cut_short.append("cut short")
    conn.add_notice_handler(notice)
    try:
        yield cut_short
    finally:
        conn.remove_notice_handler(notice)


class LedgerPostgresRecorder(PostgresApplicationRecorder):
    _statements: _Statements | None = None

    # No retry here: a save interrupted by a lost connection may have committed, and its
    # retry would fail on the stored events' keys. ``StoredStreams.save`` finds out.
    def insert_events(self, stored_events: Sequence[StoredEvent],
                      **kwargs: Any) -> Sequence[int] | None:
        if self.datastore.enable_db_functions or kwargs.get("tracking") is not None:
            # Not the ledger's configuration: the library's own path (and hook below).
            return cast(Sequence[int] | None, super().insert_events(stored_events, **kwargs))
        rows: Sequence[DataKeyRow] = kwargs.get("data_keys", ())
        log: StagedLog | None = kwargs.get("log")
        if not stored_events and not rows:
            return None
        with self.datastore.get_connection() as conn:
            # Autocommit: the statements below are one implicit transaction, committed by
            # the server when the last one succeeds, never left open. (Not an assert: in
            # a transaction opened by psycopg nothing here would ever be committed.)
            if not conn.autocommit:
                raise ProgrammingError("the event store's connections must be in autocommit")
            query = self._transaction_text(conn, stored_events, rows, log)
            with standby_wait_watched(conn) as cut_short, conn.cursor() as curs:
                curs.execute(query)  # no parameters: the simple query protocol
                while curs.nextset():  # the events' INSERT is the last statement
                    pass
                notification_ids = (
                    [row["notification_id"] for row in curs.fetchall()] if stored_events
                    else [])
        if cut_short:
            # "Committed locally, but might not have been replicated": success, with a
            # warning. Not an acknowledgement: the caller asks after it as after a lost
            # connection, and waits for the standby (``StoredStreams.save``).
            raise OperationalError("the wait for the synchronous standby was cut short")
        if not stored_events:
            return None
        if len(notification_ids) != len(stored_events):  # pragma: no cover
            raise OperationalError("the events' notification ids did not all come back")
        return notification_ids

    def _insert_events(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent],
                       **kwargs: Any) -> None:
        # The library's hook, run inside its transaction (the fallback path above only).
        rows: Sequence[DataKeyRow] = kwargs.get("data_keys", ())
        if rows:
            curs.executemany(
                SQL("INSERT INTO {}.data_keys (dek_id, tenant_id, key_version, wrapped)"
                    " VALUES (%s, %s, %s, %s)").format(Identifier(self.datastore.schema)),
                rows,
            )
        log: StagedLog | None = kwargs.get("log")
        if log is not None and log.leaves:
            curs.executemany(INSERT_LEAF, log.leaves)

    def _transaction_text(self, conn: Connection[DictRow], stored_events: Sequence[StoredEvent],
                          rows: Sequence[DataKeyRow], log: StagedLog | None) -> bytes:
        insert_keys, lock, insert_leaves, insert_events = (
            self._statements or self._prepare_statements(conn))
        literal = Escaping(conn.pgconn).escape_literal
        parts: list[bytes] = []
        if rows:
            parts.append(insert_keys + b",".join([
                b"(%s,%s,%d,%s)" % (literal(dek_id.encode()), literal(tenant_id.encode()),
                                    int(key_version), literal(wrapped.encode()))
                for dek_id, tenant_id, key_version, wrapped in rows
            ]))
        if stored_events:
            uuid_ids = self.datastore.originator_id_type == "uuid"
            parts.append(lock)
            if log is not None and log.leaves:  # under the lock: a stale head fails at once
                parts.append(insert_leaves + b",".join([
                    b"(%s,%d,%s,%d,E'\\\\x%s')" % (
                        literal(tenant_id.encode()), int(index), literal(record_id.encode()),
                        int(version), hashes.hex().encode())
                    for tenant_id, index, record_id, version, hashes in log.leaves]))
            parts.append(insert_events + b",".join([
                b"(%s,%d,%s,E'\\\\x%s')" % (
                    b"'%s'" % str(UUID(str(event.originator_id))).encode() if uuid_ids
                    else literal(str(event.originator_id).encode()),
                    int(event.originator_version),
                    literal(event.topic.encode()),
                    event.state.hex().encode(),
                )
                for event in stored_events
            ]) + b" RETURNING notification_id")
        return b";".join(parts)

    def _prepare_statements(self, conn: Connection[DictRow]) -> _Statements:
        schema = Identifier(self.datastore.schema)
        insert_keys = SQL(
            "INSERT INTO {}.data_keys (dek_id, tenant_id, key_version, wrapped) VALUES "
        ).format(schema).as_bytes(conn)
        # The library's lock statements (lock timeout, then the EXCLUSIVE table lock),
        # then its notification of listeners.
        lock = b";".join(
            [_query_bytes(statement, conn) for statement in self.lock_table_statements]
            + [SQL("NOTIFY {}").format(Identifier(self.channel_name)).as_bytes(conn)]
        )
        insert_events = SQL(
            "INSERT INTO {}.{} (originator_id, originator_version, topic, state) VALUES "
        ).format(schema, Identifier(self.events_table_name)).as_bytes(conn)
        insert_leaves = SQL(
            "INSERT INTO {}.log_leaves (tenant_id, idx, record_id, record_version, hashes)"
            " VALUES ").format(schema).as_bytes(conn)
        self._statements = (insert_keys, lock, insert_leaves, insert_events)
        return self._statements


def _query_bytes(query: object, conn: Connection[DictRow]) -> bytes:
    if isinstance(query, Composable):
        return query.as_bytes(conn)
    if isinstance(query, str):
        return query.encode()
    if isinstance(query, bytes):
        return query
    raise TypeError(f"unexpected lock statement {type(query).__name__}")


RECORDER_TOPIC = f"{__name__}:{LedgerPostgresRecorder.__qualname__}"
