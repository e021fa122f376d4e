"""Value reads on PostgreSQL: the lookups arrive as one array per column (``unnest``)."""

from __future__ import annotations

from collections.abc import Sequence

from secrets_ledger.adapters.sql.database import Database, fetch_all
from secrets_ledger.adapters.sql.values import (
    LOOKUP_COLUMNS,
    PLAIN_LOOKUP_COLUMNS,
    reads_managed,
    value_rows,
    value_statement,
)
from secrets_ledger.core.ports import ValueLookup, ValueRow


class PostgresValueLookups:
    def __init__(self, db: Database, events_table: str) -> None:
        self.db = db
        plain = ("unnest(%s::uuid[], %s::text[], %s::text[], %s::text[])"
                 f" WITH ORDINALITY AS r({PLAIN_LOOKUP_COLUMNS}, n)")
        full = ("unnest(%s::uuid[], %s::text[], %s::text[], %s::text[], %s::bigint[],"
                f" %s::text[]) WITH ORDINALITY AS r({LOOKUP_COLUMNS}, n)")
        # By (a lookup names a version, a lookup names a time, a lookup reads a managed
        # secret).
        self.statements = {
            (versions, times, managed): value_statement(
                "", full if versions or times else plain, events_table,
                versions=versions or times, times=times, managed=managed)
            for versions in (False, True) for times in (False, True)
            for managed in (False, True)}

    def value_rows(self, lookups: Sequence[ValueLookup]) -> list[ValueRow]:
        shape = (any(lookup.version is not None for lookup in lookups),
                 any(lookup.at is not None for lookup in lookups), reads_managed(lookups))
        columns = [[lookup.tenant_id for lookup in lookups],
                   [str(lookup.tenant_id) for lookup in lookups],
                   [lookup.token_digest for lookup in lookups],
                   [lookup.key for lookup in lookups]]
        if shape[:2] != (False, False):
            columns += [[lookup.version for lookup in lookups], [lookup.at for lookup in lookups]]
        return value_rows(fetch_all(self.db, self.statements[shape], columns), len(lookups))
