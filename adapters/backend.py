"""One deployment's storage: every port's implementation, for the configured backend."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from secrets_ledger.adapters.eventstore import LedgerEvents
from secrets_ledger.adapters.masterkeys import MasterKeyring
from secrets_ledger.adapters.sql.database import Database
from secrets_ledger.adapters.sql.keys import SqlKeyRows
from secrets_ledger.adapters.sql.migrations import migrate
from secrets_ledger.adapters.sql.tokens import SqlTokenRows
from secrets_ledger.adapters.sql.views import SqlViewQueries
from secrets_ledger.core.ports import TenantStreams, ValueLookups
from secrets_ledger.core.settings import Settings
from secrets_ledger.projections.ports import EventSource, ViewStore
from secrets_ledger.projections.replay import Loader

ReplayLoader = Callable[[int, int | None], Loader | None]
"""How a replay of so many events loads (with so many workers, if asked): a loader, or
None for in the replaying thread."""


@dataclass
class Storage:
    """Satisfies ``core.ports.Ports`` (what the core uses) and holds what the projections
    and the operator's commands use."""

    settings: Settings
    db: Database
    events: LedgerEvents
    streams: TenantStreams
    key_rows: SqlKeyRows
    master_keys: MasterKeyring
    token_rows: SqlTokenRows
    views: SqlViewQueries
    value_lookups: ValueLookups
    view_store: ViewStore
    event_source: EventSource
    replay_loader: ReplayLoader
    closers: list[Callable[[], None]] = field(default_factory=list)

    def migrate(self) -> list[str]:
        return migrate(self.db)

    def close(self) -> None:
        for close in self.closers:
            close()
        self.events.close()
        self.db.close()
