"""Where everything is stored: the one place that routes the ledger to its backend.

Today a deployment has one store, chosen by ``LEDGER_DATABASE_URL``: PostgreSQL when it is
set, else SQLite files in ``LEDGER_DATA_DIR``. Tenant groups (tenants spread over several
event tables or databases) become one more choice here, behind the same ports.
"""

from __future__ import annotations

import sqlite3

import psycopg
from psycopg.conninfo import conninfo_to_dict

from secrets_ledger.adapters.backend import Storage
from secrets_ledger.adapters.postgres.storage import open_postgres
from secrets_ledger.adapters.sql.pruning import IdempotencyPruning
from secrets_ledger.adapters.sqlite.storage import VIEWS_FILE, open_sqlite
from secrets_ledger.adapters.tlog_build import build_logs
from secrets_ledger.core.settings import Settings
from secrets_ledger.domain.errors import InvalidRequest

STORAGE_ERRORS: tuple[type[Exception], ...] = (psycopg.OperationalError, sqlite3.Error, OSError)
"""What a backend raises when its storage (a server, or the files of the data directory)
cannot be reached or used: a command line verb reports it in one line."""


def open_storage(settings: Settings, *, run_migrations: bool = True) -> Storage:
    """Connects to the configured backend, applying migrations first unless told not to,
    and refuses (Unavailable) a master key that does not open the store."""
    # 0700: the master key may live here, and nobody else needs to list the stores.
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if settings.database_url is not None:
        url = settings.database_url.get_secret_value()
        check_database_url(url)
        storage = open_postgres(settings, url, run_migrations=run_migrations)
    else:
        storage = open_sqlite(settings, run_migrations=run_migrations)
    storage.maintenance.append(IdempotencyPruning(storage.db,
                                                  settings.idempotency_retention_hours))
    if run_migrations:  # else the schema may predate the check (``migrate`` wraps nothing)
        try:
            build_logs(storage.log_rows, storage.streams)
            storage.check_master_key()
        except BaseException:
            storage.close()
            raise
    return storage


def holds_a_ledger(settings: Settings) -> bool:
    """Whether the configured storage holds a ledger already (a PostgreSQL schema is
    created by whichever process connects first, as a SQLite data directory by ``serve``
    or ``migrate``; other commands must not make a new, empty ledger by accident)."""
    if settings.database_url is not None:
        return True
    return (settings.data_dir / VIEWS_FILE).exists()


def check_database_url(url: str) -> None:
    """Refuses, before any driver connects with it (a driver's error would quote it,
    password and all), a URL that does not name PostgreSQL servers. Several hosts (a
    failover pair: ``postgresql://h1:p1,h2:p2/db?target_session_attrs=read-write``) are
    libpq's own multi-host form."""
    if not url.startswith(("postgresql://", "postgres://")):
        raise InvalidRequest("LEDGER_DATABASE_URL must be a postgresql:// URL (PostgreSQL is"
                             " the only server database; unset it for SQLite)")
    try:
        ports = str(conninfo_to_dict(url).get("port") or "")
    except psycopg.Error:
        raise InvalidRequest("LEDGER_DATABASE_URL is not a valid URL") from None
    if not all(not port or (port.isdigit() and 0 < int(port) < 65536)
               for port in ports.split(",")):
        raise InvalidRequest("LEDGER_DATABASE_URL is not a valid URL (a port is not a number)")


def explain_storage_error(error: BaseException) -> str:
    """One line for the operator: what kind of failure, never the URL or a password."""
    if isinstance(error, psycopg.Error):
        state = getattr(error, "sqlstate", None)
        text = str(error).lower()
        if state == "3D000" or ("database" in text and "does not exist" in text):
            return "the database does not exist on that server"
        if state in ("28P01", "28000") or "authentication failed" in text or (
                "role" in text and "does not exist" in text):
            return "the database server refused the credentials (authentication failed)"
        if "connection refused" in text:
            return "the database server refused the connection (not running on that host/port?)"
        if "translate host name" in text or "name or service not known" in text:
            return "the database host name does not resolve"
        if "timeout" in text or "timed out" in text:
            return "the database server did not answer in time"
        return f"the database server could not be used ({type(error).__name__})"
    if isinstance(error, sqlite3.Error):
        return f"the SQLite files in the data directory cannot be used ({error})"
    if isinstance(error, OSError):
        return f"the data directory cannot be used ({error.strerror})"
    return type(error).__name__
