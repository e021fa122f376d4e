"""Rebuilds views from position 0 into fresh tables and swaps them in atomically.

Readers keep reading the live tables while the rebuild runs. The swap transaction locks
the views' tracking rows (so the live projector pauses), applies whatever arrived
since, drops the live tables and renames the rebuilt ones into their place: a reader
sees the old view or the new one, never a half-built one.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from collections.abc import Callable, Sequence

import psycopg
from psycopg.abc import Buffer
from psycopg.adapt import Loader

from projections.projector import EventSource, lock_position, set_position
from projections.views import View
from service.database import Cursor, Database

REBUILD_SUFFIX = "__rebuild"
Progress = Callable[[int], None]


def _clone_table(cur: Cursor, db: Database, table: str, clone: str) -> None:
    cur.execute(f"DROP TABLE IF EXISTS {clone}")
    if db.dialect == "postgres":
        cur.execute(f"CREATE TABLE {clone} (LIKE {table} INCLUDING ALL)")
        return
    cur.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = %s AND sql IS NOT NULL"
        " ORDER BY type DESC",  # the table before its indexes
        (table,),
    )
    for kind, name, sql in cur.fetchall():
        if kind == "table":
            cur.execute(re.sub(rf"^CREATE TABLE \"?{table}\"?", f"CREATE TABLE {clone}", sql))
        else:
            # Index names are global in SQLite: give each rebuild's indexes fresh names.
            fresh = f"{name.split('__')[0]}__{secrets.token_hex(4)}"
            cur.execute(
                re.sub(rf"^CREATE (UNIQUE )?INDEX \"?{name}\"? ON \"?{table}\"?",
                       rf"CREATE \1INDEX {fresh} ON {clone}", sql)
            )


def _apply_batch(cur: Cursor, source: EventSource, views: Sequence[View], after: int,
                 until: int | None, batch_size: int, progress: Progress | None) -> int:
    """Applies the next batch after ``after`` (up to ``until``); returns the new position."""
    batch = [item for item in source.read(after, batch_size) if until is None or item[0] <= until]
    if batch:
        for view in views:
            view.apply_batch(cur, batch)
    if progress is not None and batch:
        progress(len(batch))
    return batch[-1][0] if batch else after


def replay(db: Database, source: EventSource, view_classes: Sequence[type[View]],
           progress: Progress | None = None, batch_size: int = 5000) -> str:
    """Rebuilds the given views and swaps them in; returns their checksum."""
    rebuilt = [cls(REBUILD_SUFFIX) for cls in view_classes]
    with db.transaction() as cur:
        for view in rebuilt:
            for table in view.tables:
                _clone_table(cur, db, table, view.t[table])
    # Bulk phase: many events per transaction, outside any lock the live side needs.
    target = source.max_position()
    position = 0
    while position < target:
        with db.transaction() as cur:
            reached = _apply_batch(cur, source, rebuilt, position, target, batch_size, progress)
        if reached == position:
            break
        position = reached
    with db.transaction() as cur:
        for view in rebuilt:
            lock_position(cur, db, view.name)
        while (reached := _apply_batch(cur, source, rebuilt, position, None, batch_size,
                                       progress)) != position:
            position = reached
        for view in rebuilt:
            for table in view.tables:
                cur.execute(f"DROP TABLE {table}")
                cur.execute(f"ALTER TABLE {view.t[table]} RENAME TO {table}")
            set_position(cur, view.name, position)
    return views_checksum(db, view_classes)


class _BoolAsInt(Loader):
    """PostgreSQL booleans as SQLite returns them (1 or 0), so that both checksum alike."""

    def load(self, data: Buffer) -> int:
        return 1 if data == b"t" else 0


CHECKSUM_CHUNK = 10_000


def views_checksum(db: Database, view_classes: Sequence[type[View]]) -> str:
    """SHA-256 over every row of the views in key order, the same on both backends."""
    digest = hashlib.sha256()
    with db.transaction() as cur:
        if isinstance(cur, psycopg.Cursor):
            cur.adapters.register_loader("bool", _BoolAsInt)
        for cls in view_classes:
            for table in cls.tables:
                digest.update(f"table {table}\n".encode())
                cur.execute(f"SELECT * FROM {table} ORDER BY {cls.order_by[table]}")
                while rows := cur.fetchmany(CHECKSUM_CHUNK):
                    digest.update(json.dumps(rows).encode() + b"\n")
    return digest.hexdigest()
