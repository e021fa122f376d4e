"""A running ledger: storage, the service, and the projector following in a thread."""

from __future__ import annotations

import threading
from types import TracebackType

from secrets_ledger.projections.projector import Projector
from secrets_ledger.service.ledger import Ledger
from secrets_ledger.service.settings import Settings
from secrets_ledger.service.storage import Storage, open_storage


class LedgerRuntime:
    def __init__(self, settings: Settings, *, follow: bool = True) -> None:
        self.storage: Storage = open_storage(settings)
        self.projector = Projector(self.storage.db, self.storage.source)
        self.ledger = Ledger(self.storage, self.projector)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if follow:
            self._thread = threading.Thread(
                target=self.projector.run,
                args=(self._stop, settings.projection_poll_interval),
                name="projector",
                daemon=True,
            )
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self.projector.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.ledger.close()
        self.storage.close()

    def __enter__(self) -> LedgerRuntime:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
