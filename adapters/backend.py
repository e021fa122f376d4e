"""One deployment's storage: every port's implementation, for the configured backend."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from secrets_ledger.adapters.eventstore import LedgerEvents
from secrets_ledger.adapters.log_keys import LogKey
from secrets_ledger.adapters.masterkeys import MasterKeyring
from secrets_ledger.adapters.sql.changes import SqlChangeRows
from secrets_ledger.adapters.sql.database import Database
from secrets_ledger.adapters.sql.keys import SqlKeyRows
from secrets_ledger.adapters.sql.masterkeycheck import check_master_key
from secrets_ledger.adapters.sql.migrations import migrate
from secrets_ledger.adapters.sql.processes import SqlProcesses
from secrets_ledger.adapters.sql.tlog import SqlLogRows
from secrets_ledger.adapters.sql.tokens import SqlTokenRows
from secrets_ledger.adapters.sql.views import SqlViewQueries
from secrets_ledger.adapters.tlog_build import build_logs
from secrets_ledger.core.ports import TenantStreams, ValueLookups
from secrets_ledger.core.settings import Settings
from secrets_ledger.domain.crypto import key_fingerprint
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
    log_rows: SqlLogRows
    log_key: LogKey
    change_rows: SqlChangeRows
    backup: Callable[[Path], list[Path]] | None = None
    """Copies the running store into a new directory (SQLite; PostgreSQL has pg_dump)."""
    closers: list[Callable[[], None]] = field(default_factory=list)
    maintenance: list[Callable[[], None]] = field(default_factory=list)
    """What a server runs every second (e.g. keeping WAL files within their limit)."""
    unreachable: tuple[type[BaseException], ...] = ()
    """What the drivers raise when the store cannot be reached now (``Ports``)."""

    @property
    def processes(self) -> SqlProcesses:
        return self.key_rows.processes

    def maintain(self) -> None:
        for task in self.maintenance:
            task()

    def migrate(self, progress: Callable[[int], None] | None = None) -> list[str]:
        """Applies the schema migrations, then builds the transparency logs of records
        stored before them (if any)."""
        applied = migrate(self.db)
        built = build_logs(self.log_rows, self.streams, progress)
        if built is not None:
            applied.append(f"transparency logs ({built} records)")
        return applied

    def check_master_key(self, *, joining: bool = False) -> str:
        """The master key in force, which this process must hold (else Unavailable, one
        line for the operator); ``joining``: this process is a server, recorded as live
        in the same transaction."""
        keyring = self.master_keys
        return check_master_key(self.db, keyring.held(), key_fingerprint(keyring.primary()),
                                keyring.source, self.processes if joining else None)

    def close(self) -> None:
        for close in self.closers:
            close()
        self.events.close()
        self.db.close()
