"""Value reads on SQLite: the events live in another file, attached to a connection of
this adapter's own (read only in use: it never opens a write transaction, so it never
locks either file), and the lookups arrive as a ``VALUES`` list."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path

from secrets_ledger.adapters.sql.values import (
    LOOKUP_COLUMNS,
    reads_managed,
    value_rows,
    value_statement,
)
from secrets_ledger.adapters.sqlite.database import ThreadConnections
from secrets_ledger.core.ports import ValueLookup, ValueRow


class SQLiteValueLookups:
    def __init__(self, views_file: Path, events_file: Path) -> None:
        self.views_file = views_file
        self.events_file = events_file
        self._connections = ThreadConnections(self._open)

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.views_file, timeout=30.0, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA busy_timeout=30000")
        conn.execute("ATTACH DATABASE ? AS ev", (str(self.events_file),))
        return conn

    def value_rows(self, lookups: Sequence[ValueLookup]) -> list[ValueRow]:
        marks = ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(lookups))
        statement = value_statement(
            f"WITH r(n, {LOOKUP_COLUMNS}) AS (VALUES {marks}) ", "r", "ev.stored_events",
            versions=any(lookup.version is not None for lookup in lookups),
            times=any(lookup.at is not None for lookup in lookups),
            managed=reads_managed(lookups))
        params = [value for n, lookup in enumerate(lookups)
                  for value in (n, lookup.tenant_id.hex, str(lookup.tenant_id),
                                lookup.token_digest, lookup.key, lookup.version, lookup.at)]
        # One read transaction across both files: the head and the views are read from
        # snapshots taken while the statement runs.
        rows = self._connections.get().execute(statement, params).fetchall()
        return value_rows(rows, len(lookups))

    def close(self) -> None:
        self._connections.close()
