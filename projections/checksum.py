"""A checksum of the views: SHA-256 over every row in key order, the same on both backends.

The rows are hashed in PostgreSQL's ``COPY`` text form (tab-separated, ``\\N`` for NULL,
``t``/``f`` for booleans, backslash escapes). PostgreSQL streams that form itself, so a
table of a million rows is hashed without building a Python object per row; SQLite's rows
are written in the same form here.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg

from projections.views import View
from service.database import Cursor, Database

_ESCAPES = str.maketrans({"\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                          "\t": "\\t", "\v": "\\v"})
_CHUNK = 10_000


def copy_text(row: Sequence[Any], booleans: Sequence[bool]) -> str:
    """One row as PostgreSQL's ``COPY ... TO STDOUT`` writes it (text format)."""
    fields = []
    for value, boolean in zip(row, booleans, strict=True):
        if value is None:
            fields.append("\\N")
        elif boolean:
            fields.append("t" if value else "f")
        elif isinstance(value, str):
            fields.append(value.translate(_ESCAPES))
        else:
            fields.append(str(value))
    return "\t".join(fields) + "\n"


def _sqlite_chunks(cur: Cursor, table: str, order_by: str) -> Iterator[bytes]:
    cur.execute(f"SELECT type FROM pragma_table_info('{table}') ORDER BY cid")
    booleans = [kind.upper() == "BOOLEAN" for (kind,) in cur.fetchall()]
    cur.execute(f"SELECT * FROM {table} ORDER BY {order_by}")
    while rows := cur.fetchmany(_CHUNK):
        yield "".join(copy_text(row, booleans) for row in rows).encode()


def _postgres_chunks(cur: psycopg.Cursor[Any], table: str, order_by: str) -> Iterator[bytes]:
    with cur.copy(f"COPY (SELECT * FROM {table} ORDER BY {order_by}) TO STDOUT") as copy:
        for data in copy:
            yield bytes(data)


def views_checksum(db: Database, view_classes: Sequence[type[View]]) -> str:
    """SHA-256 over every row of the views in key order, the same on both backends."""
    digest = hashlib.sha256()
    with db.transaction() as cur:  # one snapshot of every table
        for cls in view_classes:
            for table in cls.tables:
                digest.update(f"table {table}\n".encode())
                chunks = (_postgres_chunks(cur, table, cls.order_by[table])
                          if isinstance(cur, psycopg.Cursor)
                          else _sqlite_chunks(cur, table, cls.order_by[table]))
                for chunk in chunks:
                    digest.update(chunk)
    return digest.hexdigest()
