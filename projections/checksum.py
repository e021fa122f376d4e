"""A checksum of the views: SHA-256 over every table's rows in key order, the same on both
backends.

The rows are hashed in PostgreSQL's ``COPY`` text form (tab-separated, ``\\N`` for NULL,
``t``/``f`` for booleans, backslash escapes), which each backend's adapter produces
without building a Python object per row: equal views, equal checksums, whichever
backend holds them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from secrets_ledger.projections.ports import ViewStore
from secrets_ledger.projections.view import View


def views_checksum(store: ViewStore, view_classes: Sequence[type[View]]) -> str:
    """SHA-256 over each table's name and the digest of its rows (``rows_digest``), all
    read in one snapshot; tables digested one by one or side by side, the same sum."""
    tables = [(table, cls.order_by[table]) for cls in view_classes for table in cls.tables
              if table not in cls.pruned]
    digest = hashlib.sha256()
    for (table, _), rows in zip(tables, store.table_digests(tables), strict=True):
        digest.update(f"table {table}\n".encode() + rows)
    return digest.hexdigest()


def rows_digest(chunks: Iterable[bytes | bytearray | memoryview]) -> bytes:
    """SHA-256 of a table's rows in ``COPY`` text form, in key order."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return digest.digest()
