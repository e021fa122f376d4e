"""The event store's PostgreSQL recorder, extended to store a batch's data keys in the
same transaction as the batch's events.

A value's data key and the event holding its ciphertext then commit together or not
at all: no orphan keys after a conflict, and one durable commit per batch, not two.
The library calls ``_insert_events`` inside its transaction, before it locks the events
table, with the keyword arguments given to ``Application.save``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

DataKeyRow = tuple[str, str, int, str]  # dek_id, tenant_id, key_version, wrapped


class LedgerPostgresRecorder(PostgresApplicationRecorder):
    def _insert_events(self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent],
                       **kwargs: Any) -> None:
        rows: Sequence[DataKeyRow] = kwargs.get("data_keys", ())
        if rows:
            curs.executemany(
                SQL("INSERT INTO {}.data_keys (dek_id, tenant_id, key_version, wrapped)"
                    " VALUES (%s, %s, %s, %s)").format(Identifier(self.datastore.schema)),
                rows,
            )


RECORDER_TOPIC = f"{__name__}:{LedgerPostgresRecorder.__qualname__}"
