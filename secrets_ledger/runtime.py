"""A running ledger: storage (the configured backend's adapters), the projector following
the event store in a thread, and the core's use cases over both. The one place that
wires the layers together; ``serve`` and every command line verb start from here."""

from __future__ import annotations

import threading
from types import TracebackType

from secrets_ledger.adapters.backend import Storage
from secrets_ledger.adapters.storage import open_storage
from secrets_ledger.core.ledger import Ledger
from secrets_ledger.core.settings import Settings
from secrets_ledger.projections.projector import Projector


class LedgerRuntime:
    def __init__(self, settings: Settings, *, follow: bool = True) -> None:
        self.settings = settings
        self.storage: Storage = open_storage(settings)
        self.projector = Projector(self.storage.view_store, self.storage.event_source)
        self.ledger = Ledger(self.storage, self.projector, settings)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if follow:
            self._thread = threading.Thread(
                target=self.projector.run, args=(self._stop, settings.projection_poll_interval),
                name="projector", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self.projector.wake()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.ledger.close()
        self.storage.close()

    def __enter__(self) -> LedgerRuntime:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
