"""The event store's SQLite recorder, extended to keep the transparency logs' tables in
the events' file and to store a batch's leaves in the batch's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

from secrets_ledger.adapters.sql.tlog import INSERT_LEAF, log_ddl
from secrets_ledger.adapters.tlog_appender import StagedLog


class LedgerSQLiteRecorder(SQLiteApplicationRecorder):
    def construct_create_table_statements(self) -> list[str]:
        return [*super().construct_create_table_statements(),
                *log_ddl("BLOB", " WITHOUT ROWID")]

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent],
                       **kwargs: Any) -> Sequence[int] | None:
        log: StagedLog | None = kwargs.get("log")
        if log is not None and log.leaves:
            c.executemany(INSERT_LEAF.replace("%s", "?"), log.leaves)
        return super()._insert_events(c, stored_events, **kwargs)


RECORDER_TOPIC = f"{__name__}:{LedgerSQLiteRecorder.__qualname__}"
