"""Rows as PostgreSQL's ``COPY`` text lines, built by SQLite itself (for the views'
checksum, which must be the same on both backends).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from secrets_ledger.adapters.sql.database import Cursor

_CHUNK = 10_000


# PostgreSQL's COPY text escapes, as (character code, escape); the backslash comes first,
# so that the backslashes of the other escapes are not escaped again.
_ESCAPES = ((92, "\\\\"), (8, "\\b"), (12, "\\f"), (10, "\\n"), (13, "\\r"), (9, "\\t"),
            (11, "\\v"))
_ESCAPED_BYTES = bytes(code for code, _ in _ESCAPES)


def _sqlite_text(column: str, kind: str, escaped: bool) -> str:
    """SQL that gives one column as COPY text, or NULL: booleans as t/f, numbers in
    decimal, text as it is or (``escaped``) with COPY's escapes."""
    name = f'"{column}"'
    if kind.upper() == "BOOLEAN":
        return f"CASE WHEN {name} IS NULL THEN NULL WHEN {name} THEN 't' ELSE 'f' END"
    if kind.upper() != "TEXT":
        return f"CAST({name} AS TEXT)"
    if escaped:
        for code, escape in _ESCAPES:
            name = f"replace({name}, char({code}), '{escape}')"
    return name


def _sqlite_lines(table: str, columns: Sequence[tuple[str, str]], order_by: str,
                  escaped: bool, offset: int) -> str:
    """SQL giving each row (from the ``offset``-th on) as one COPY text line, and the
    number of its NULLs."""
    line = " || char(9) || ".join(f"coalesce({_sqlite_text(name, kind, escaped)}, '\\N')"
                                  for name, kind in columns)
    nulls = " + ".join(f'("{name}" IS NULL)' for name, _ in columns)
    return (f"SELECT {line} || char(10), {nulls} FROM {table} ORDER BY {order_by}"
            f" LIMIT -1 OFFSET {offset}")


def _plain(data: bytes, rows: int, columns: int, nulls: int) -> bool:
    """Whether lines built without escaping hold no character that needed one: every
    tab, newline and backslash in them is one the lines put there themselves (in UTF-8
    these bytes never occur inside another character; one pass, where a search took
    four times as long)."""
    ours = rows * (columns - 1) + rows + nulls
    return len(data) - len(data.translate(None, _ESCAPED_BYTES)) == ours


def copy_text_chunks(cur: Cursor, table: str, order_by: str) -> Iterator[bytes]:
    """The rows as COPY text lines, each built by SQLite, so that Python only joins them
    (building each line in Python cost 3.6 µs a row). Escaping is rare (the views hold
    base64, JSON and checked names) and costs SQLite seven ``replace`` calls a value: the
    lines are built without it while each chunk proves it needed none; from the first
    chunk that did, the rest of the table is read again with it."""
    cur.execute(f"SELECT name, type FROM pragma_table_info('{table}') ORDER BY cid")
    columns = [(str(name), str(kind)) for name, kind in cur.fetchall()]
    done = 0
    for escaped in (False, True):
        cur.execute(_sqlite_lines(table, columns, order_by, escaped, done))
        while rows := cur.fetchmany(_CHUNK):
            data = "".join([row[0] for row in rows]).encode()
            if not escaped and not _plain(data, len(rows), len(columns),
                                          sum(row[1] for row in rows)):
                break
            done += len(rows)
            yield data
        else:
            return
