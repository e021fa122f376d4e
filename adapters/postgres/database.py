"""The project's own tables on PostgreSQL, in the same database (and schema) as the events."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool

from secrets_ledger.adapters.sql.database import Cursor
from secrets_ledger.domain.errors import Unavailable

MIGRATION_LOCK_ID = 0x5EC7E75  # advisory lock key shared by every ledger process
POOL_WAIT_SECONDS = 5.0
"""How long a statement waits for a connection: past it, 503 (a readiness probe must
be answered while the database is away)."""
RECONNECT_SECONDS = 1.0
"""How long the pool retries a lost connection in the background before it leaves the
next one to demand: psycopg_pool's retries back off exponentially (1, 2, 4... seconds),
which would leave the ledger unconnected for seconds after a failover had ended."""


class PostgresDatabase:
    """A psycopg pool whose connections search the configured schema first."""

    def __init__(self, url: str, schema: str, pool_size: int,
                 session_attrs: dict[str, str] | None = None) -> None:
        """``session_attrs``: libpq's choice among the URL's hosts, instead of the URL's
        own (``target_session_attrs``: a failover pair's URL asks for ``read-write``)."""
        self.url = url
        self.schema = schema
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            # Autocommit: a lone read is one round trip; transaction() still wraps writes.
            kwargs={"options": f"-c search_path={schema},public", "autocommit": True,
                    **connect_timeout(url), **(session_attrs or {})},
            open=False,
            timeout=POOL_WAIT_SECONDS,
            reconnect_timeout=RECONNECT_SECONDS,
        )
        self.pool.open(wait=True, timeout=15.0)

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        try:
            with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
                yield cursor
        except psycopg.OperationalError:
            self.pool.check()
            raise

    @contextmanager
    def read(self) -> Iterator[Cursor]:
        try:
            with self.pool.connection() as conn, conn.cursor() as cursor:
                yield cursor
        except psycopg.OperationalError:
            # After a failover every idle connection is to the old primary: drop them all
            # now rather than fail one request each.
            self.pool.check()
            raise

    def lock_for_migrations(self, cur: Cursor) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))

    def erase_deleted(self, tables: Sequence[str]) -> None:
        # A deleted row stays in its page as a dead tuple, and neither VACUUM nor page
        # pruning zeroes it; VACUUM FULL writes the table's live rows to new files and
        # unlinks the old ones. (The WAL keeps copies until its segments are recycled.)
        # It copies a deleted row too while any snapshot may still see it: first wait for
        # every snapshot older than now (a moment, for the ledger's own short ones).
        with self.pool.connection() as conn:
            was_autocommit, conn.autocommit = conn.autocommit, True  # VACUUM: no transaction
            try:
                _wait_for_older_snapshots(conn)
                for table in tables:
                    conn.execute(sql.SQL("VACUUM FULL {}").format(sql.Identifier(table)))
            finally:
                conn.autocommit = was_autocommit

    def row_lock(self, *, exclusive: bool) -> str:
        return " FOR UPDATE" if exclusive else " FOR SHARE"

    def close(self) -> None:
        self.pool.close()


# A transaction between two statements holds no snapshot (``backend_xmin`` is null) but,
# once it has written, its xid still holds back what VACUUM FULL may drop: both count.
OLDER_SNAPSHOTS = """
SELECT count(*) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid()
  AND ((backend_xmin IS NOT NULL AND age(backend_xmin) >= age(%(now)s::text::xid))
       OR (backend_xid IS NOT NULL AND age(backend_xid) >= age(%(now)s::text::xid)))
"""
SNAPSHOT_WAIT_SECONDS = 30.0


def _wait_for_older_snapshots(conn: psycopg.Connection[Any]) -> None:
    """Returns once no other session holds a snapshot from before this moment; Unavailable
    after ``SNAPSHOT_WAIT_SECONDS`` (the keys are deleted, but a long transaction still
    sees them: a retry erases once it has ended)."""
    row = conn.execute("SELECT txid_current() % 4294967296").fetchone()
    assert row is not None
    deadline = time.monotonic() + SNAPSHOT_WAIT_SECONDS
    while True:
        older = conn.execute(OLDER_SNAPSHOTS, {"now": str(row[0])}).fetchone()
        if older is None or older[0] == 0:
            return
        if time.monotonic() > deadline:
            raise Unavailable("the keys are deleted, but a transaction open since before"
                              " still sees them in the database files; retry to erase them")
        time.sleep(0.01)


def ensure_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
        try:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))


CONNECT_SECONDS = 10
"""libpq's connect timeout unless the URL sets one (libpq's own default is to wait for
the network: a node of a pair that died without a word would hold every connection)."""


def connect_timeout(url: str) -> dict[str, str]:
    """The URL's ``connect_timeout`` (per host of a multi-host URL), else ours."""
    return {"connect_timeout": str(conninfo_to_dict(url).get("connect_timeout")
                                   or CONNECT_SECONDS)}


LIBPQ_OPTIONS = "LEDGER_LIBPQ_OPTIONS"
"""The event store's setting for every other option of the URL (``recorder.
LedgerPostgresFactory`` hands them to the library's pool)."""


def event_store_env(url: str, schema: str, pool_size: int, recorder_topic: str
                    ) -> dict[str, str]:
    """The ``eventsourcing`` settings that point its recorder at the same database, with
    the same connection options: a multi-host URL (``postgresql://h1:p1,h2:p2/db?
    target_session_attrs=read-write``, a failover pair) reaches the same server as the
    ledger's own pool does."""
    options = {name: str(value) for name, value in conninfo_to_dict(url).items()
               if value is not None}
    options.update(connect_timeout(url))
    return {
        "PERSISTENCE_MODULE": "secrets_ledger.adapters.postgres.recorder:LedgerPostgresFactory",
        "POSTGRES_DBNAME": options.pop("dbname", "postgres"),
        "POSTGRES_HOST": options.pop("host", "127.0.0.1"),
        "POSTGRES_PORT": options.pop("port", "5432"),
        "POSTGRES_USER": options.pop("user", "postgres"),
        "POSTGRES_PASSWORD": options.pop("password", ""),
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(pool_size),
        # How long a call waits for a pooled connection (the library retries a read ten
        # times): a query ends in about 20 s when the database is away, not in minutes.
        "POSTGRES_CONNECT_TIMEOUT": "2",
        "APPLICATION_RECORDER_TOPIC": recorder_topic,
        LIBPQ_OPTIONS: make_conninfo(**options),
    }
