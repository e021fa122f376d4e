"""The project's own tables on either backend, behind one small interface.

SQL is written once with ``%s`` placeholders; the SQLite backend rewrites them to ``?``.
Everything the ledger stores outside the event store (views, tracking, key store,
tokens) goes through here; the event store itself is the ``eventsourcing`` recorder.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg_pool import ConnectionPool

from secrets_ledger.service.clock import format_time, utc_now
from secrets_ledger.service.recorders import RECORDER_TOPIC

Dialect = Literal["sqlite", "postgres"]
Row = tuple[Any, ...]


class Cursor(Protocol):
    """The part of a DB-API cursor the ledger uses, with ``%s`` placeholders."""

    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any: ...

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any: ...

    def fetchone(self) -> Row | None: ...

    def fetchall(self) -> list[Row]: ...

    def fetchmany(self, size: int) -> list[Row]: ...


class Database(Protocol):
    dialect: Dialect

    def transaction(self) -> Any:
        """A context manager yielding a Cursor; commits on success, rolls back on error."""

    def read(self) -> Any:
        """A context manager yielding a Cursor for one read statement: no transaction
        around it (no BEGIN/COMMIT round trips, and on SQLite no write lock)."""

    def close(self) -> None: ...


class _SQLiteCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._cursor.execute(sql.replace("%s", "?"), tuple(params))

    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any:
        return self._cursor.executemany(sql.replace("%s", "?"), [tuple(p) for p in params])

    def fetchone(self) -> Row | None:
        row: Row | None = self._cursor.fetchone()
        return row

    def fetchall(self) -> list[Row]:
        return list(self._cursor.fetchall())

    def fetchmany(self, size: int) -> list[Row]:
        return list(self._cursor.fetchmany(size))


def use_wal(conn: sqlite3.Connection) -> None:
    """Switches the file to WAL once; two processes opening a new file may collide here,
    and the loser of that race is told "locked" at once (no busy handler): retry."""
    for attempt in range(50):
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if attempt == 49:
                raise
            time.sleep(0.05)


class SQLiteDatabase:
    """One connection per thread to a WAL-mode file; write transactions are IMMEDIATE."""

    dialect: Dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, check_same_thread=False
            )
            use_wal(conn)
            # FULL: a data key must be as durable as the event that needs it.
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[Cursor]:
        conn = self._connection()
        cursor = conn.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            yield _SQLiteCursor(cursor)
        except BaseException:
            conn.rollback()
            raise
        else:
            conn.commit()
        finally:
            cursor.close()

    @contextmanager
    def read(self) -> Iterator[Cursor]:
        cursor = self._connection().cursor()
        try:
            yield _SQLiteCursor(cursor)
        finally:
            cursor.close()

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


class PostgresDatabase:
    """A psycopg pool whose connections search the configured schema first."""

    dialect: Dialect = "postgres"

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

    def close(self) -> None:
        self.pool.close()


def fetch_one(db: Database, sql: str, params: Sequence[Any] = ()) -> Row | None:
    """One row of a one-statement read."""
    with db.read() as cur:
        cur.execute(sql, params)
        row: Row | None = cur.fetchone()
        return row


def fetch_all(db: Database, sql: str, params: Sequence[Any] = ()) -> list[Row]:
    with db.read() as cur:
        cur.execute(sql, params)
        rows: list[Row] = cur.fetchall()
        return rows


def postgres_env(url: str, schema: str, pool_size: int) -> dict[str, str]:
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
        "APPLICATION_RECORDER_TOPIC": RECORDER_TOPIC,
    }


MIGRATION_LOCK_ID = 0x5EC7E75  # advisory lock key shared by every ledger process


def migrations() -> list[tuple[str, str]]:
    """The numbered SQL files, in order. They are written in the SQL both backends share
    (SQLite stores BOOLEAN as 0/1), so one history serves both."""
    folder = resources.files("secrets_ledger.migrations")
    files = sorted(
        (entry.name, entry.read_text("utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    )
    return files


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";\n") if part.strip()]


def migrate(db: Database) -> list[str]:
    """Applies the numbered SQL files not applied yet, exactly once, under a lock."""
    applied_now: list[str] = []
    with db.transaction() as cur:
        if db.dialect == "postgres":
            # Serialises concurrent starts: the second waits, then finds all applied.
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_ID,))
        cur.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (version TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        cur.execute("SELECT version FROM schema_migrations")
        done = {row[0] for row in cur.fetchall()}
        for name, script in migrations():
            if name in done:
                continue
            for statement in _statements(script):
                cur.execute(statement)
            cur.execute(
                "INSERT INTO schema_migrations (version, applied_at) VALUES (%s, %s)",
                (name, format_time(utc_now())),
            )
            applied_now.append(name)
    return applied_now


def ensure_schema(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_ID,))
        try:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_ID,))
