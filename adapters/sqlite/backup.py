"""A consistent copy of a SQLite ledger, taken while it runs (``secrets-ledger backup``).

The ledger is two files: ``events.sqlite`` (events, the transparency logs) and
``ledger.sqlite`` (data keys, tokens, views and their positions). A writer stores a
write's data keys in the second, then its event in the first; the projector moves the
views after the events. So the copy takes the events file's write lock first (writers
wait, readers do not), copies the events, then the second file, then lets go: every event
copied has its data keys in the copy, and no view is ahead of the copied events (one that
is behind catches up when the copy is served).

The copy is made with SQLite's online backup API into a new directory (0700, files 0600),
and holds no key: the master key and the log key are backed up apart (without the master
key, the copy's values never open again).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from secrets_ledger.adapters.sqlite.files import make_private

BUSY_TIMEOUT = 30.0  # seconds to wait for the events' write lock (a writer's commit)


def back_up(files: tuple[Path, Path], into: Path) -> list[Path]:
    """Copies the events file, then the other one, into the new directory ``into``,
    under the events file's write lock; returns the copies."""
    events_file, other_file = files
    into.mkdir(mode=0o700, parents=True)  # a new directory: never mixed with another copy
    # The lock is held by a connection of its own: SQLite's backup refuses to read through
    # a connection that is writing (it would answer "locked" for ever).
    lock = sqlite3.connect(events_file, timeout=BUSY_TIMEOUT, isolation_level=None)
    try:
        lock.execute("BEGIN IMMEDIATE")  # no event commits until both files are copied
        try:
            return [_copy(events_file, into), _copy(other_file, into)]
        finally:
            lock.execute("ROLLBACK")
    finally:
        lock.close()


def _copy(database: Path, into: Path) -> Path:
    path = into / database.name
    make_private(path)
    source, target = sqlite3.connect(database, timeout=BUSY_TIMEOUT), sqlite3.connect(path)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    os.chmod(path, 0o600)
    return path
