"""Value reads on PostgreSQL: the lookups arrive as one array per column (``unnest``)."""

from __future__ import annotations

from collections.abc import Sequence

from secrets_ledger.adapters.sql.database import Database, fetch_all
from secrets_ledger.adapters.sql.values import LOOKUP_COLUMNS, value_rows, value_statement
from secrets_ledger.core.ports import ValueLookup, ValueRow


class PostgresValueLookups:
    def __init__(self, db: Database, events_table: str) -> None:
        self.db = db
        source = ("unnest(%s::uuid[], %s::text[], %s::text[], %s::text[], %s::bigint[],"
                  f" %s::text[]) WITH ORDINALITY AS r({LOOKUP_COLUMNS}, n)")
        self.statements = {times: value_statement("", source, events_table, times=times)
                           for times in (False, True)}

    def value_rows(self, lookups: Sequence[ValueLookup]) -> list[ValueRow]:
        columns = [[lookup.tenant_id for lookup in lookups],
                   [str(lookup.tenant_id) for lookup in lookups],
                   [lookup.token_digest for lookup in lookups],
                   [lookup.key for lookup in lookups],
                   [lookup.version for lookup in lookups],
                   [lookup.at for lookup in lookups]]
        statement = self.statements[any(lookup.at is not None for lookup in lookups)]
        return value_rows(fetch_all(self.db, statement, columns), len(lookups))
