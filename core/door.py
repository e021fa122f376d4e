"""What every use case goes through: authentication, admission, the group-commit writer,
and read-your-writes.

A use case admits its caller before it judges anything the caller sent, so that errors
come in the contract's order: the credential (401), the tenant's scope and the role
(404, 403), then the request itself (400...). A bearer token is authenticated by the
writer with the rest of its batch when the use case runs there; otherwise here, in one
statement.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, NoReturn, TypeVar
from uuid import UUID

from secrets_ledger.core.admission import WriterLimits
from secrets_ledger.core.envelope import Envelope
from secrets_ledger.core.jobs import Command, Job, Replay
from secrets_ledger.core.pages import CursorCodec
from secrets_ledger.core.policy import GLOBAL_USE_CASES, UseCase, authorize
from secrets_ledger.core.ports import Ports, StoreUnreachable, ViewsFollower
from secrets_ledger.core.principals import Credential, Principal, principal_of
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.core.settings import Settings
from secrets_ledger.core.writer import BatchWriter
from secrets_ledger.domain import rules
from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.domain.errors import (
    IdempotencyKeyReused,
    LedgerError,
    TenantMoved,
    TenantNotFound,
    Unavailable,
)
from secrets_ledger.domain.tenant import Tenant, tenant_id_for

T = TypeVar("T")
TOKEN_TENANTS_KEPT = 10_000
_UNKNOWN = object()
UNKNOWN = _UNKNOWN
QUERY_THREADS = 32
"""Queries run in a pool of their own, bounded: each holds a database connection while it
runs, and a read-your-writes wait holds its thread (at most the configured timeout)."""


class Door:
    def __init__(self, ports: Ports, follower: ViewsFollower, settings: Settings) -> None:
        self.ports = ports
        self.views = ports.views
        self.streams = ports.streams
        self.follower = follower
        self.settings = settings
        self.envelope = Envelope(ports.key_rows, ports.master_keys)
        self.cursors = CursorCodec(ports.master_keys.primary())
        self.on_saved: Callable[[], None] = lambda: None  # a front end's metrics hook
        self.writer = BatchWriter(ports, self._saved, self.stored_outcome,
                                  WriterLimits(settings.max_queued_requests,
                                               settings.max_queued_bytes,
                                               settings.idempotency_cache_bytes),
                                  settings.store_retry_timeout)
        self._threads = ThreadPoolExecutor(QUERY_THREADS, thread_name_prefix="ledger-query")
        self.unreachable: tuple[type[BaseException], ...] = (StoreUnreachable,
                                                             *ports.unreachable)
        self._token_tenants: dict[str, str | None] = {}
        self._token_tenants_lock = threading.Lock()

    def _saved(self) -> None:
        self.follower.wake()
        self.on_saved()

    def close(self) -> None:
        self.writer.close()
        self._threads.shutdown(wait=True, cancel_futures=True)

    async def in_thread(self, call: Callable[..., T], *args: Any) -> T:
        """Runs blocking work (statements, waits) off the event loop; a store that cannot
        be reached is StoreUnreachable (503) to the caller, whatever the driver."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self._threads,
                                                                    partial(call, *args))
        except self.unreachable as error:
            if isinstance(error, StoreUnreachable):
                raise
            raise StoreUnreachable("the database cannot be reached; retry") from None

    # ---- who is asking --------------------------------------------------------------------

    def authenticate(self, credential: Credential) -> Principal:
        if isinstance(credential, Principal):
            return credential
        rows = self.ports.token_rows.by_hashes([credential.digest])
        return principal_of(credential.digest, rows.get(credential.digest))

    def tenant_of(self, credential: Credential) -> str | None:
        """The tenant of a credential's token (None: an admin's), remembered for recent
        tokens (bounded): it never changes, and whether the token is still live is
        checked by every use case it is presented to. Unauthorized for an unknown one."""
        known = self.remembered_tenant(credential)
        if known is not _UNKNOWN or isinstance(credential, Principal):
            return known  # type: ignore[return-value]
        tenant = self.authenticate(credential).tenant
        with self._token_tenants_lock:
            if len(self._token_tenants) >= TOKEN_TENANTS_KEPT:
                self._token_tenants.pop(next(iter(self._token_tenants)))
            self._token_tenants[credential.digest] = tenant
        return tenant

    def remembered_tenant(self, credential: Credential) -> object:
        """``tenant_of`` without a statement: the tenant, or ``UNKNOWN`` if not remembered."""
        if isinstance(credential, Principal):
            return credential.tenant
        return self._token_tenants.get(credential.digest, _UNKNOWN)

    def admit(self, credential: Credential, tenant: str | None, use_case: UseCase
              ) -> Principal:
        """The caller's principal, if it may run ``use_case`` on ``tenant``."""
        principal = self.authenticate(credential)
        authorize(principal, None if use_case in GLOBAL_USE_CASES else tenant, use_case)
        return principal

    async def admitted(self, credential: Credential, tenant: str | None,
                       use_case: UseCase) -> Principal:
        if isinstance(credential, Principal):
            return self.admit(credential, tenant, use_case)
        return await self.in_thread(self.admit, credential, tenant, use_case)

    async def refuse(self, credential: Credential, tenant: str | None, use_case: UseCase,
                     error: LedgerError) -> NoReturn:
        """Raises ``error`` (something wrong with the request) once the caller has been
        admitted: a caller without the right learns that first."""
        await self.admitted(credential, tenant, use_case)
        raise error

    # ---- commands ---------------------------------------------------------------------------

    async def command(self, credential: Credential, use_case: UseCase, tenant: str,
                      request: RequestInfo, run: Command[T], replayed: Replay[T] | None = None,
                      *, check: Callable[[], None] | None = None, moving: bool = False) -> T:
        """Runs ``run`` on the aggregate of ``tenant`` through the group-commit writer, once
        the caller is admitted; ``check`` judges the request's own input first (then the
        tenant's name is checked). A request repeated with its idempotency key gets the
        first outcome (``replayed``) and writes nothing more. A tenant moved to another
        group is refused (TenantMoved), unless ``moving`` (``tenant_move``'s last step)."""
        tenant_id = tenant_id_for(tenant)
        if request.idempotency_key is not None and replayed is not None:
            principal = await self.admitted(credential, tenant, use_case)
            previous = await self.in_thread(self.stored_outcome, tenant_id,
                                            request.context(principal))
            if previous is not None:
                return replayed(previous)
            credential = principal

        def checked(aggregate: Tenant | None, effects: Any, ctx: RequestContext
                    ) -> tuple[Tenant, T]:
            if check is not None:
                check()
            rules.check_tenant_name(tenant)
            if aggregate is not None and not moving:  # moved away: nothing changes here
                aggregate.check_not_moved()
            return run(aggregate, effects, ctx)

        scope = None if use_case in GLOBAL_USE_CASES else tenant
        return await self.writer.run(Job(credential, use_case, scope, request,
                                         tenant_id=tenant_id, command=checked,
                                         replayed=replayed))

    async def on_tenant(self, credential: Credential, use_case: UseCase, tenant: str,
                        request: RequestInfo,
                        run: Callable[[Tenant, Any, RequestContext], T]) -> T:
        """``command`` for a use case that needs the tenant to exist: ``run`` gets its
        aggregate (and the effects, and the context) and returns the caller's result."""
        def on_existing(aggregate: Tenant | None, effects: Any, ctx: RequestContext
                        ) -> tuple[Tenant, T]:
            found = self.existing(aggregate)
            return found, run(found, effects, ctx)

        return await self.command(credential, use_case, tenant, request, on_existing)

    @staticmethod
    def existing(tenant: Tenant | None) -> Tenant:
        if tenant is None:
            raise TenantNotFound("no such tenant")
        return tenant

    # ---- read-your-writes -------------------------------------------------------------------

    def await_tenant(self, tenant_id: UUID) -> tuple[str | None] | None:
        """Waits until the views hold every event of the tenant's stream stored before this
        call; returns (shredded_at,), or None when the tenant has no stream."""
        target = self.streams.head(tenant_id)
        if target is None:
            return None
        found: list[tuple[str | None]] = []

        def caught_up() -> bool:
            state = self.views.tenant_state(str(tenant_id))
            if state is None or state[1] < target:
                return False
            found.append((state[0],))
            if state[2] is not None:
                raise TenantMoved("the tenant is moving to another tenant group; retry")
            return True

        if not self.follower.wait_until(caught_up, self.settings.read_your_writes_timeout):
            raise Unavailable("the views are behind the event store; retry shortly")
        return found[-1]

    def tenant_row(self, name: str) -> tuple[str, str | None]:
        """(tenant id, shredded_at) of a known tenant, once the views hold every event of
        its stream stored before this call."""
        rules.check_tenant_name(name)
        tenant_id = tenant_id_for(name)
        found = self.await_tenant(tenant_id)
        if found is None:
            raise TenantNotFound("no such tenant")
        return str(tenant_id), found[0]

    def await_views(self) -> None:
        """Waits until the views hold every event stored before this call (for queries over
        what is recorded outside the tenants' streams: value reads)."""
        target = self.streams.max_position()
        if not self.follower.wait_for(target, self.settings.read_your_writes_timeout):
            raise Unavailable("the views are behind the event store; retry shortly")

    def stored_outcome(self, tenant_id: UUID, ctx: RequestContext) -> dict[str, Any] | None:
        """The outcome of the request first made under this idempotency key, if any."""
        if ctx.idempotency_key is None or self.await_tenant(tenant_id) is None:
            return None
        found = self.views.idempotency_record(str(tenant_id), ctx.idempotency_key)
        if found is None:
            return None
        request_hash, result = found
        if not hmac.compare_digest(str(request_hash or ""), ctx.request_hash or ""):
            raise IdempotencyKeyReused("this Idempotency-Key was used for another request")
        outcome: dict[str, Any] = json.loads(result)
        return outcome
