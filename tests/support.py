"""The core's use cases as the storage tests call them: blocking (each call runs its
coroutine to the end, as the command line does), as an admin principal named by the
test's ``RequestContext`` (its actor and request id are what the events record).

This is a front end of its own, like the CLI: it authenticates nothing (the principal is
given) and everything else is the core's.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from secrets_ledger.core.history import FullScan
from secrets_ledger.core.jobs import Job
from secrets_ledger.core.ledger import Ledger
from secrets_ledger.core.pages import Page
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.ports import AuditFilter, AuditRow
from secrets_ledger.core.principals import Credential, Principal, Role
from secrets_ledger.core.reads import KeyItem, SecretValue, VersionInfo
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.core.secrets import WriteResult
from secrets_ledger.core.tenants import TenantInfo
from secrets_ledger.core.tokens import IssuedToken
from secrets_ledger.domain.changes import Change, Precondition, RequestContext
from secrets_ledger.domain.tenant import tenant_id_for
from secrets_ledger.domain.verification import ChainCheck
from secrets_ledger.runtime import LedgerRuntime

T = TypeVar("T")


_threads = threading.local()
RUNNERS: list[asyncio.Runner] = []  # closed at the end of the session (conftest.py)


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Runs the coroutine to its end on this thread's event loop (one loop per thread, kept:
    a new loop per call costs a millisecond, and the storage tests make thousands)."""
    runner: asyncio.Runner | None = getattr(_threads, "runner", None)
    if runner is None:
        runner = _threads.runner = asyncio.Runner()
        RUNNERS.append(runner)
    return runner.run(coroutine)


def caller_of(ctx: RequestContext) -> tuple[Credential, RequestInfo]:
    return (Principal(ctx.actor, "admin", None),
            RequestInfo(ctx.request_id, ctx.idempotency_key, ctx.request_hash))


class Blocking:
    """``ledger``'s use cases, blocking, as the admin named by each call's context."""

    def __init__(self, ledger: Blocking) -> None:
        self.ledger = ledger

    def open_tenant(self, name: str, ctx: RequestContext) -> str:
        return run(self.ledger.tenants.open(*_swap(caller_of(ctx), name)))

    def list_tenants(self) -> list[TenantInfo]:
        return run(self.ledger.tenants.list_all(Principal.operator()))

    def rotate_tenant_key(self, name: str, ctx: RequestContext) -> int:
        return run(self.ledger.tenants.rotate_key(*_swap(caller_of(ctx), name)))

    def shred_tenant(self, name: str, ctx: RequestContext) -> str:
        return run(self.ledger.tenants.shred(*_swap(caller_of(ctx), name)))

    def issue_token(self, role: Role, tenant: str | None, ctx: RequestContext,
                    ttl_seconds: int | None = None) -> IssuedToken:
        caller, request = caller_of(ctx)
        return run(self.ledger.tokens.issue(caller, role, tenant, ttl_seconds, "", request))

    def revoke_token(self, tenant: str, token: str, ctx: RequestContext) -> str:
        caller, request = caller_of(ctx)
        return run(self.ledger.tokens.revoke(caller, tenant, token, request))

    def write_secrets(self, name: str, changes: Sequence[Change], values: Mapping[str, Any],
                      ctx: RequestContext) -> list[WriteResult]:
        caller, request = caller_of(ctx)
        return run(self.ledger.secrets.write(caller, name, changes, values, request))

    def put_secret(self, name: str, key: str, value: Any, metadata: dict[str, str] | None,
                   precondition: Precondition | None, ctx: RequestContext) -> WriteResult:
        caller, request = caller_of(ctx)
        return run(self.ledger.secrets.put(caller, name, key, value, metadata, precondition,
                                           request))

    def delete_secret(self, name: str, key: str, precondition: Precondition | None,
                      ctx: RequestContext) -> None:
        caller, request = caller_of(ctx)
        run(self.ledger.secrets.delete(caller, name, key, precondition, request))

    def undelete_secret(self, name: str, key: str, ctx: RequestContext) -> int:
        caller, request = caller_of(ctx)
        return run(self.ledger.secrets.undelete(caller, name, key, request))

    def rollback_secret(self, name: str, key: str, version: int,
                        ctx: RequestContext) -> WriteResult:
        caller, request = caller_of(ctx)
        return run(self.ledger.secrets.roll_back(caller, name, key, version, request))

    def destroy_versions(self, name: str, key: str, versions: Sequence[int],
                         ctx: RequestContext) -> list[int]:
        caller, request = caller_of(ctx)
        return run(self.ledger.secrets.destroy(caller, name, key, versions, request))

    def import_secrets(self, name: str, values: Mapping[str, Any], ctx: RequestContext,
                       progress: Callable[[int], None] | None = None,
                       create_tenant: bool = True) -> list[WriteResult]:
        caller, request = caller_of(ctx)
        return run(self.ledger.imports.json_object(caller, name, values, request,
                                                   create_tenant=create_tenant,
                                                   progress=progress))

    def get_secret(self, name: str, key: str, ctx: RequestContext, version: int | None = None,
                   at: str | None = None) -> SecretValue:
        caller, request = caller_of(ctx)
        return run(self.ledger.reads.value(caller, name, key, request, version=version, at=at))

    def list_versions(self, name: str, key: str) -> tuple[int, list[VersionInfo]]:
        return run(self.ledger.reads.versions(Principal.operator(), name, key))

    def list_keys(self, name: str, prefix: str = "", limit: int = 100,
                  cursor: str | None = None, at: str | None = None) -> Page[KeyItem]:
        return run(self.ledger.reads.keys(Principal.operator(), name, prefix=prefix,
                                          limit=limit, cursor=cursor, at=at))

    def audit(self, name: str, where: AuditFilter | None = None, limit: int = 100,
              cursor: str | None = None) -> Page[AuditRow]:
        where = where or AuditFilter()
        return run(self.ledger.history.audit(
            Principal.operator(), name, key=where.key, actor=where.actor, action=where.action,
            since=where.since, until=where.until, limit=limit, cursor=cursor))

    def verify(self, name: str) -> ChainCheck:
        return run(self.ledger.history.verify(Principal.operator(), name))

    def verify_all(self) -> FullScan:
        return run(self.ledger.history.verify_all(Principal.operator()))


def _swap(caller: tuple[Credential, RequestInfo], name: str
          ) -> tuple[Credential, str, RequestInfo]:
    return caller[0], name, caller[1]


def blocking(runtime: LedgerRuntime) -> Blocking:
    return Blocking(runtime.ledger)


@contextmanager
def held_writer(ledger: Ledger, tenant: str = "acme") -> Iterator[None]:
    """Keeps the group-commit writer inside a command on ``tenant`` until the block ends,
    so that what is submitted meanwhile goes into one batch."""
    release = threading.Event()

    def hold(aggregate: Any, effects: Any, ctx: Any) -> tuple[Any, None]:
        release.wait(30)
        return aggregate, None

    job: Job[None] = Job(Principal.operator(), UseCase.WRITE_SECRETS, tenant,
                         RequestInfo("hold"), tenant_id=tenant_id_for(tenant), command=hold)
    holder = threading.Thread(target=lambda: run(ledger.door.writer.run(job)))
    holder.start()
    time.sleep(0.2)  # the writer is inside hold()
    try:
        yield
    finally:
        release.set()
        holder.join()


class Call(threading.Thread):
    """A call in a thread of its own: its answer, once it has one."""

    def __init__(self, call: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self.call = call
        self.answer: Any = None
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            self.answer = self.call()
        except BaseException as error:
            self.error = error

    def answered(self, timeout: float) -> bool:
        self.join(timeout)
        return not self.is_alive()
