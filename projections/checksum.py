"""A checksum of the views: SHA-256 over every row in key order, the same on both backends.

The rows are hashed in PostgreSQL's ``COPY`` text form (tab-separated, ``\\N`` for NULL,
``t``/``f`` for booleans, backslash escapes). PostgreSQL streams that form itself, so a
table of a million rows is hashed without building a Python object per row; SQLite's rows
are written in the same form by SQL, inside SQLite.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg
from psycopg.abc import Buffer

from projections.views import View
from service.database import Cursor, Database

_CHUNK = 10_000


_ESCAPES = str.maketrans({"\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n",
                          "\r": "\\r", "\t": "\\t", "\v": "\\v"})
_NEEDS_ESCAPING = re.compile(r"[\\\b\f\n\r\t\v]")


def _sqlite_field(column: str, kind: str) -> str:
    """SQL that gives one column as text, or NULL: booleans as t/f, numbers in decimal."""
    name = f'"{column}"'
    if kind.upper() == "BOOLEAN":
        return f"CASE WHEN {name} IS NULL THEN NULL WHEN {name} THEN 't' ELSE 'f' END"
    return name if kind.upper() == "TEXT" else f"CAST({name} AS TEXT)"


def _copy_line(row: Sequence[str | None], escape: bool) -> str:
    if escape:
        return "\t".join(["\\N" if v is None else v.translate(_ESCAPES) for v in row]) + "\n"
    return "\t".join(["\\N" if v is None else v for v in row]) + "\n"


def _sqlite_chunks(cur: Cursor, table: str, order_by: str) -> Iterator[bytes]:
    cur.execute(f"SELECT name, type FROM pragma_table_info('{table}') ORDER BY cid")
    fields = ", ".join(_sqlite_field(name, kind) for name, kind in cur.fetchall())
    cur.execute(f"SELECT {fields} FROM {table} ORDER BY {order_by}")
    while rows := cur.fetchmany(_CHUNK):
        # Escaping is rare (the views hold JSON, base64 and checked names): look once.
        values = "".join(v for row in rows for v in row if v is not None)
        escape = _NEEDS_ESCAPING.search(values) is not None
        yield "".join(_copy_line(row, escape) for row in rows).encode()


def _postgres_chunks(cur: psycopg.Cursor[Any], table: str, order_by: str) -> Iterator[Buffer]:
    # The rows as psycopg hands them over (copying each into bytes cost a sixth of the
    # checksum's Python time: it is spent per row, a million rows a table).
    with cur.copy(f"COPY (SELECT * FROM {table} ORDER BY {order_by}) TO STDOUT") as copy:
        yield from copy


def rows_as_copy_text(cur: Cursor, table: str, order_by: str) -> Iterator[Buffer]:
    """Every row of ``table`` in ``order_by`` order, in PostgreSQL's COPY text form."""
    if isinstance(cur, psycopg.Cursor):
        return _postgres_chunks(cur, table, order_by)
    return _sqlite_chunks(cur, table, order_by)


def views_checksum(db: Database, view_classes: Sequence[type[View]]) -> str:
    """SHA-256 over every row of the views in key order, the same on both backends."""
    digest = hashlib.sha256()
    with db.transaction() as cur:  # one snapshot of every table
        for cls in view_classes:
            for table in cls.tables:
                digest.update(f"table {table}\n".encode())
                for chunk in rows_as_copy_text(cur, table, cls.order_by[table]):
                    digest.update(chunk)
    return digest.hexdigest()
