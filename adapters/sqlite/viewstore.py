"""The view tables on SQLite: bulk writes are ``executemany`` in-process (already cheap),
row dumps are built by SQLite (``copytext``), and a table's copy is made from the SQL
that created it."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Sequence
from typing import Any

from secrets_ledger.adapters.sql.database import Cursor
from secrets_ledger.adapters.sql.viewstore import SqlViewStore, SqlViewWriter, names
from secrets_ledger.adapters.sqlite.copytext import copy_text_chunks
from secrets_ledger.projections.ports import Column, TableClone, ViewWriter


class SQLiteViewWriter(SqlViewWriter):
    def append(self, table: str, columns: Sequence[Column],
               rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            marks = ", ".join(["%s"] * len(columns))
            self.cur.executemany(f"INSERT INTO {table} ({names(columns)}) VALUES ({marks})",
                                 rows)

    def merge(self, table: str, columns: Sequence[Column], rows: Sequence[Sequence[Any]],
              on_conflict: str) -> None:
        if rows:
            marks = ", ".join(["%s"] * len(columns))
            self.cur.executemany(f"INSERT INTO {table} ({names(columns)}) VALUES ({marks})"
                                 f" ON CONFLICT {on_conflict}", rows)

    def update(self, table: str, *, assign: Sequence[Column], keys: Sequence[Column],
               rows: Sequence[Sequence[Any]], fixed: str = "", where: str = "") -> None:
        if rows:
            sets = [f"{name} = %s" for name, _ in assign] + ([fixed] if fixed else [])
            matches = [f"{name} = %s" for name, _ in keys] + ([where] if where else [])
            self.cur.executemany(f"UPDATE {table} SET {', '.join(sets)}"
                                 f" WHERE {' AND '.join(matches)}", rows)

    def rows_as_copy_text(self, table: str, order_by: str) -> Iterator[bytes]:
        return copy_text_chunks(self.cur, table, order_by)


class SQLiteViewStore(SqlViewStore):
    def writer(self, cur: Cursor) -> ViewWriter:
        return SQLiteViewWriter(cur)

    def clone_table(self, tx: ViewWriter, table: str, clone: str) -> TableClone:
        assert isinstance(tx, SQLiteViewWriter)
        cur = tx.cur
        cur.execute(f"DROP TABLE IF EXISTS {clone}")
        cur.execute("SELECT type, name, sql FROM sqlite_master WHERE tbl_name = %s"
                    " AND sql IS NOT NULL ORDER BY type DESC",  # the table before its indexes
                    (table,))
        for kind, name, sql in cur.fetchall():
            if kind == "table":
                cur.execute(re.sub(rf"^CREATE TABLE \"?{table}\"?", f"CREATE TABLE {clone}",
                                   sql))
            else:
                # Index names are global in SQLite: give each rebuild's indexes fresh names.
                fresh = f"{name.split('__')[0]}__{secrets.token_hex(4)}"
                cur.execute(re.sub(rf"^CREATE (UNIQUE )?INDEX \"?{name}\"? ON \"?{table}\"?",
                                   rf"CREATE \1INDEX {fresh} ON {clone}", sql))
        return TableClone(table, clone)
