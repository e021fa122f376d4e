"""A running ledger: storage (the configured backend's adapters), the projector following
the event store in a thread, and the core's use cases over both. The one place that
wires the layers together; ``serve`` and every command line verb start from here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Sequence
from types import TracebackType

from secrets_ledger.adapters.backend import Storage
from secrets_ledger.adapters.sql.processes import BEAT_SECONDS
from secrets_ledger.adapters.storage import open_storage
from secrets_ledger.adapters.witness_post import WitnessClient
from secrets_ledger.core.ledger import Ledger
from secrets_ledger.core.managed_purges import SWEEP_SECONDS
from secrets_ledger.core.principals import Principal
from secrets_ledger.core.settings import Settings
from secrets_ledger.domain.log_check import LogCheck
from secrets_ledger.projections.projector import Projector
from secrets_ledger.projections.replay import replay
from secrets_ledger.projections.view import View

logger = logging.getLogger(__name__)


class LedgerRuntime:
    """``serving``: a server, which says every second which master keys it holds (and
    notices a rotation's next key file), so that a rotation waits for it."""

    def __init__(self, settings: Settings, *, follow: bool = True,
                 serving: bool = False) -> None:
        self.settings = settings
        self.storage: Storage = open_storage(settings)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._serving = serving
        try:
            if serving:
                self.storage.check_master_key(joining=True)
                self._start(self._beat, "heartbeat")
            self.projector = Projector(self.storage.view_store, self.storage.event_source)
            self.witnesses = WitnessClient()
            self.ledger = Ledger(self.storage, self.projector, settings, self.witnesses)
        except BaseException:
            self._stop.set()
            self.storage.close()
            raise
        if follow:
            self._start(self.projector.run, "projector", settings.projection_poll_interval)
        if serving:
            self._start(self._sweep, "managed-purges")
            self._start(self._checkpoints, "checkpoints")

    def _start(self, target: Callable[..., None], name: str, *args: object) -> None:
        thread = threading.Thread(target=target, args=(self._stop, *args), name=name,
                                  daemon=True)
        thread.start()
        self._threads.append(thread)

    def _beat(self, stop: threading.Event) -> None:
        keyring, processes = self.storage.master_keys, self.storage.processes
        while not stop.wait(BEAT_SECONDS):
            try:
                keyring.refresh()
                self.storage.log_key.refresh()
                processes.beat(keyring.held())
                self.storage.maintain()
            except Exception:  # storage away for a moment: the next beat tries again
                logger.warning("heartbeat failed; retrying")

    def _sweep(self, stop: threading.Event) -> None:
        """Purges managed secrets whose recovery window ran out, every minute."""
        while not stop.wait(SWEEP_SECONDS):
            try:
                asyncio.run(self.ledger.purges.sweep())
            except Exception:
                logger.warning("purging expired secrets failed; retrying")

    def _checkpoints(self, stop: threading.Event) -> None:
        """Signs a checkpoint of every log that grew, every ``checkpoint_interval`` (at
        start: of every log any process left behind its checkpoint)."""
        sweep = True
        while not stop.wait(0 if sweep else self.settings.checkpoint_interval):
            try:
                self.ledger.checkpointer.sign_round(sweep=sweep)
                sweep = False
            except Exception as error:
                logger.warning("signing checkpoints failed (%s); retrying",
                               type(error).__name__)

    def lag(self) -> int:
        return self.projector.lag()

    @property
    def groups(self) -> dict[str, LedgerRuntime]:
        """Its one group (``GroupedRuntime`` has several), for the operator's commands."""
        return {self.settings.group_name: self}

    def replay(self, views: Sequence[type[View]], workers: int | None = None,
               progress: Callable[[int], None] | None = None) -> tuple[str, LogCheck]:
        """``secrets-ledger replay``: rebuilds the views and swaps them in, recomputing
        every transparency log from the records in the same pass; returns the views'
        checksum and the logs' verdict. A damaged event raises ``DamagedEvent``."""
        storage, history = self.storage, self.ledger.history
        operator = Principal.operator()
        loader = storage.replay_loader(storage.event_source.max_position(), workers)
        check = asyncio.run(history.replay_check(operator))
        checksum = replay(storage.view_store, storage.event_source, views, progress=progress,
                          loader=loader, check=check)
        return checksum, asyncio.run(history.replay_verdict(operator, check))

    def close(self) -> None:
        self._stop.set()
        self.projector.wake()
        for thread in self._threads:
            thread.join(timeout=10)
        if self._serving:
            with contextlib.suppress(Exception):
                self.storage.processes.leave()
        self.ledger.close()
        with contextlib.suppress(Exception):  # what this process appended gets signed
            self.ledger.checkpointer.sign_round()
        self.witnesses.close()
        self.storage.close()

    def __enter__(self) -> LedgerRuntime:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
