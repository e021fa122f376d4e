"""Idempotency records kept for the retention the contract promises (at least 24 hours),
then pruned by the running server, so that the table does not grow with every request
that ever carried an ``Idempotency-Key``."""

from __future__ import annotations

import time
from datetime import timedelta

from secrets_ledger.adapters.sql.database import Database
from secrets_ledger.domain.times import format_time, utc_now

PRUNE_EVERY_SECONDS = 600.0


class IdempotencyPruning:
    """A maintenance task (a server calls it every second): deletes the records older
    than the retention, at most once every ``every`` seconds."""

    def __init__(self, db: Database, retention_hours: float,
                 every: float = PRUNE_EVERY_SECONDS) -> None:
        self.db = db
        self.retention = timedelta(hours=retention_hours)
        self.every = every
        self._next = 0.0

    def __call__(self) -> None:
        if time.monotonic() >= self._next:
            self._next = time.monotonic() + self.every
            self.prune()

    def prune(self) -> int:
        """Deletes the records older than the retention now; returns how many."""
        cutoff = format_time(utc_now() - self.retention)
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM idempotency_records WHERE created_at < %s", (cutoff,))
            return max(cur.rowcount, 0)
