"""The project's own tables on PostgreSQL, in the same database (and schema) as the events."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool

from secrets_ledger.adapters.sql.database import Cursor

MIGRATION_LOCK_ID = 0x5EC7E75  # advisory lock key shared by every ledger process


class PostgresDatabase:
    """A psycopg pool whose connections search the configured schema first."""

    def __init__(self, url: str, schema: str, pool_size: int) -> None:
        self.url = url
        self.schema = schema
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            # Autocommit: a lone read is one round trip; transaction() still wraps writes.
            kwargs={"options": f"-c search_path={schema},public", "connect_timeout": 10,
                    "autocommit": True},
            open=False,
            timeout=30.0,
        )
        self.pool.open(wait=True, timeout=15.0)

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        with self.pool.connection() as conn, conn.transaction(), conn.cursor() as cursor:
            yield cursor

    @contextmanager
    def read(self) -> Iterator[Cursor]:
        with self.pool.connection() as conn, conn.cursor() as cursor:
            yield cursor

    def lock_for_migrations(self, cur: Cursor) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))

    def erase_deleted(self, tables: Sequence[str]) -> None:
        # A deleted row stays in its page as a dead tuple, and neither VACUUM nor page
        # pruning zeroes it; VACUUM FULL writes the table's live rows to new files and
        # unlinks the old ones. (The WAL keeps copies until its segments are recycled.)
        with self.pool.connection() as conn:
            conn.autocommit = True  # VACUUM runs outside a transaction
            try:
                for table in tables:
                    conn.execute(sql.SQL("VACUUM FULL {}").format(sql.Identifier(table)))
            finally:
                conn.autocommit = False

    def row_lock(self, *, exclusive: bool) -> str:
        return " FOR UPDATE" if exclusive else " FOR SHARE"

    def close(self) -> None:
        self.pool.close()


def ensure_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
        try:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))


def event_store_env(url: str, schema: str, pool_size: int, recorder_topic: str
                    ) -> dict[str, str]:
    """The ``eventsourcing`` settings that point its recorder at the same database."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError("LEDGER_DATABASE_URL must start with postgresql://")
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
        "POSTGRES_HOST": parts.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(parts.port or 5432),
        "POSTGRES_USER": unquote(parts.username or "postgres"),
        "POSTGRES_PASSWORD": unquote(parts.password or ""),
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(pool_size),
        "POSTGRES_CONNECT_TIMEOUT": "30",
        "APPLICATION_RECORDER_TOPIC": recorder_topic,
    }
