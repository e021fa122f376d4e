"""A checksum of the views: SHA-256 over every row in key order, the same on both backends.

The rows are hashed in PostgreSQL's ``COPY`` text form (tab-separated, ``\\N`` for NULL,
``t``/``f`` for booleans, backslash escapes), which each backend's adapter produces
without building a Python object per row: equal views, equal checksums, whichever
backend holds them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from secrets_ledger.projections.ports import ViewStore
from secrets_ledger.projections.view import View


def views_checksum(store: ViewStore, view_classes: Sequence[type[View]]) -> str:
    digest = hashlib.sha256()
    with store.transaction() as tx:  # one snapshot of every table
        for cls in view_classes:
            for table in cls.tables:
                if table in cls.pruned:
                    continue
                digest.update(f"table {table}\n".encode())
                for chunk in tx.rows_as_copy_text(table, cls.order_by[table]):
                    digest.update(chunk)
    return digest.hexdigest()
