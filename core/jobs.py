"""The work the group-commit writer does for one caller: a command on a tenant's aggregate,
or a value read recorded with the batch. A job carries its caller's credential, so that
the writer authenticates every caller of a batch in one statement."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from uuid import UUID

from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.ports import ValueLookup, ValueRow, WrappedDataKey
from secrets_ledger.core.principals import BearerToken, Credential, Principal
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.domain.errors import LedgerError, Unavailable
from secrets_ledger.domain.reads import ReadRecord
from secrets_ledger.domain.tenant import Tenant

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Effects:
    """What a command needs done in the key store with its event: new data keys saved
    with it, and changes made just before it is saved (tenant keys made or destroyed)."""

    data_keys: list[WrappedDataKey] = field(default_factory=list)
    before_save: list[Callable[[], None]] = field(default_factory=list)


Command = Callable[[Tenant | None, Effects, RequestContext], tuple[Tenant, T]]
"""Runs on the tenant's aggregate (None: no stream yet) for an admitted caller; returns
the aggregate to save and the caller's result. It may refuse (a ``LedgerError``)."""
Replay = Callable[[dict[str, Any]], T]
"""The result of a command repeated under its idempotency key, from the first outcome."""
Answer = Callable[[ValueRow, RequestContext], tuple[T, list[ReadRecord]]]
"""Judges a value read's row for an admitted caller: the result and the reads to record
(none when there is nothing to hand out yet)."""


@dataclass(eq=False, slots=True)
class Job(Generic[T]):
    credential: Credential
    use_case: UseCase
    tenant: str | None  # the tenant the caller named (None: a global use case)
    request: RequestInfo
    tenant_id: UUID | None = None  # the aggregate a command runs on
    command: Command[T] | None = None
    replayed: Replay[T] | None = None
    lookup: ValueLookup | None = field(default=None, repr=False)  # a value read
    answer: Answer[T] | None = None
    # Set by the writer once the caller is admitted.
    ctx: RequestContext | None = None
    reads: list[ReadRecord] = field(default_factory=list, repr=False)  # to record with it
    new_events: list[Any] = field(default_factory=list, repr=False)
    result: Any = field(default=None, repr=False)  # may be a value
    error: BaseException | None = None
    done: bool = False  # read and set by the writer thread only
    notify: Callable[[], None] | None = None  # wakes the caller awaiting on its event loop

    @property
    def token(self) -> BearerToken | None:
        """The bearer token still to authenticate, if the caller sent one."""
        return self.credential if isinstance(self.credential, BearerToken) else None

    def admitted(self, principal: Principal) -> None:
        self.ctx = self.request.context(principal)

    def prepared(self, step: Callable[[Job[T]], bool]) -> bool:
        """Runs a preparing ``step`` (whether the job goes on to be committed); a refusal,
        or any other failure, answers the job instead."""
        try:
            return step(self)
        except LedgerError as error:
            self.finish(error=error)
        except Exception as error:
            # The type only: a message could quote the input, which may be a value.
            log.error("preparing a job failed: %s", type(error).__name__)
            self.finish(error=Unavailable("the request failed; retry"))
        return False

    def finish(self, result: Any = None, error: BaseException | None = None) -> None:
        if self.done:  # answered already: a caller is woken once
            return
        self.result, self.error = result, error
        self.done = True
        if self.notify is not None:
            self.notify()

    def outcome(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result

    @property
    def idempotency(self) -> tuple[UUID, str] | None:
        key = self.request.idempotency_key
        if key is None or self.tenant_id is None or self.replayed is None:
            return None
        return self.tenant_id, key

    async def awaited(self, submit: Callable[[Job[T]], None]) -> T:
        """Submits the job and awaits its end on the running loop: no thread waits."""
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[None] = loop.create_future()

        def notify() -> None:  # in the writer thread
            with suppress(RuntimeError):  # the loop was closed: nobody waits any more
                loop.call_soon_threadsafe(_resolve, finished)

        self.notify = notify
        submit(self)
        # A cancelled caller (the client left) does not withdraw the job: a read it
        # records is then on file though its value was never sent, which errs on the
        # side of the audit trail.
        await finished
        result: T = self.outcome()
        return result


def _resolve(finished: asyncio.Future[None]) -> None:
    if not finished.done():
        finished.set_result(None)
