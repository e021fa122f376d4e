"""The running servers and the master keys each holds (``ports.LiveProcesses``).

Each server writes its row every ``BEAT_SECONDS`` and removes it when it stops; a row not
refreshed for ``LIVE_SECONDS`` is a process that died. A master-key rotation retires the
old key only once every live server holds the new one, so that no running server is
left with keys it cannot open.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Collection
from datetime import timedelta

from secrets_ledger.adapters.sql.database import Cursor, Database
from secrets_ledger.domain.times import format_time, utc_now

BEAT_SECONDS = 1.0
LIVE_SECONDS = 5.0


class SqlProcesses:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.process_id = uuid.uuid4().hex
        self.description = f"{socket.gethostname()} pid {os.getpid()}"

    def join(self, cur: Cursor, key_ids: Collection[str]) -> None:
        now = format_time(utc_now())
        cur.execute("INSERT INTO ledger_processes (process_id, description, started_at,"
                    " seen_at, master_key_ids) VALUES (%s, %s, %s, %s, %s)",
                    (self.process_id, self.description, now, now, " ".join(sorted(key_ids))))

    def beat(self, key_ids: Collection[str]) -> None:
        """Refreshes this process's row (re-inserting it if an operator removed it)."""
        ids = " ".join(sorted(key_ids))
        with self.db.transaction() as cur:
            cur.execute("UPDATE ledger_processes SET seen_at = %s, master_key_ids = %s"
                        " WHERE process_id = %s", (format_time(utc_now()), ids, self.process_id))
            if cur.rowcount == 0:
                self.join(cur, key_ids)

    def leave(self) -> None:
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM ledger_processes WHERE process_id = %s", (self.process_id,))

    def lacking(self, key_id: str) -> list[str]:
        """The other live processes that do not hold the master key ``key_id``."""
        with self.db.read() as cur:
            return self.lacking_in(cur, key_id)

    def lacking_in(self, cur: Cursor, key_id: str) -> list[str]:
        live_since = format_time(utc_now() - timedelta(seconds=LIVE_SECONDS))
        cur.execute("SELECT description, master_key_ids FROM ledger_processes"
                    " WHERE seen_at >= %s AND process_id <> %s", (live_since, self.process_id))
        return sorted(str(description) for description, ids in cur.fetchall()
                      if key_id not in str(ids).split())
