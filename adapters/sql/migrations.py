"""The schema of the project's own tables: numbered SQL files in ``migrations/``, applied in
order, each exactly once, even when two processes start at the same moment."""

from __future__ import annotations

from importlib import resources

from secrets_ledger.adapters.sql.database import Database
from secrets_ledger.domain.times import format_time, utc_now


def migrations() -> list[tuple[str, str]]:
    """The numbered SQL files, in order. They are written in the SQL both backends share
    (SQLite stores BOOLEAN as 0/1), so one history serves both."""
    folder = resources.files("secrets_ledger.migrations")
    return sorted((entry.name, entry.read_text("utf-8")) for entry in folder.iterdir()
                  if entry.name.endswith(".sql"))


def _statements(script: str) -> list[str]:
    return [part.strip() for part in script.split(";\n") if part.strip()]


def migrate(db: Database) -> list[str]:
    """Applies the numbered SQL files not applied yet, exactly once, under a lock."""
    applied_now: list[str] = []
    with db.transaction() as cur:
        db.lock_for_migrations(cur)  # the second process waits, then finds all applied
        cur.execute("CREATE TABLE IF NOT EXISTS schema_migrations"
                    " (version TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        cur.execute("SELECT version FROM schema_migrations")
        done = {row[0] for row in cur.fetchall()}
        for name, script in migrations():
            if name in done:
                continue
            for statement in _statements(script):
                cur.execute(statement)
            cur.execute("INSERT INTO schema_migrations (version, applied_at) VALUES (%s, %s)",
                        (name, format_time(utc_now())))
            applied_now.append(name)
    return applied_now
