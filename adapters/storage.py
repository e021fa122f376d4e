"""Where everything is stored: the one place that routes the ledger to its backend.

Today a deployment has one store, chosen by ``LEDGER_DATABASE_URL``: PostgreSQL when it is
set, else SQLite files in ``LEDGER_DATA_DIR``. Tenant groups (tenants spread over several
event tables or databases) become one more choice here, behind the same ports.
"""

from __future__ import annotations

import sqlite3

import psycopg

from secrets_ledger.adapters.backend import Storage
from secrets_ledger.adapters.postgres.storage import open_postgres
from secrets_ledger.adapters.sqlite.storage import open_sqlite
from secrets_ledger.core.settings import Settings

STORAGE_ERRORS: tuple[type[Exception], ...] = (psycopg.OperationalError, sqlite3.Error, OSError)
"""What a backend raises when its storage (a server, or the files of the data directory)
cannot be reached or used: a command line verb reports it in one line."""


def open_storage(settings: Settings, *, run_migrations: bool = True) -> Storage:
    """Connects to the configured backend, applying migrations first unless told not to,
    and refuses (Unavailable) a master key that does not open the store."""
    # 0700: the master key may live here, and nobody else needs to list the stores.
    settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if settings.database_url is not None:
        storage = open_postgres(settings, settings.database_url.get_secret_value(),
                                run_migrations=run_migrations)
    else:
        storage = open_sqlite(settings, run_migrations=run_migrations)
    if run_migrations:  # else the schema may predate the check (``migrate`` wraps nothing)
        try:
            storage.check_master_key()
        except BaseException:
            storage.close()
            raise
    return storage
