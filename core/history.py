"""History: the audit trail and the verification of each tenant's hash chain (auditors and
admins; neither ever sees a value, and verification needs no decryption key)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from eventsourcing.utils import resolve_topic

from secrets_ledger.core.door import Door
from secrets_ledger.core.pages import Page, check_limit
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.ports import AuditFilter, AuditRow
from secrets_ledger.core.principals import Credential
from secrets_ledger.core.replay_logs import ReplayedLogs
from secrets_ledger.domain import rules
from secrets_ledger.domain.errors import TenantNotFound
from secrets_ledger.domain.log_check import LogCheck
from secrets_ledger.domain.log_fold import CHUNK, LogFold
from secrets_ledger.domain.log_leaves import READ_RECORDS
from secrets_ledger.domain.read_chain import ReadChainsCheck, TenantReadsCheck
from secrets_ledger.domain.reads import MovedReads
from secrets_ledger.domain.tenant import tenant_id_for
from secrets_ledger.domain.times import stored_time
from secrets_ledger.domain.verification import ChainCheck


@dataclass
class FullScan:
    logs: LogCheck
    checks: dict[str, ChainCheck] = field(default_factory=dict)
    reads: ReadChainsCheck = field(default_factory=ReadChainsCheck)

    @property
    def ok(self) -> bool:
        return (self.reads.ok and self.logs.ok
                and all(check.ok for check in self.checks.values()))


COPIED_READS = f":{MovedReads.Copied.__qualname__}"


class History:
    def __init__(self, door: Door) -> None:
        self.door = door

    async def audit(self, caller: Credential, tenant: str, *, key: str | None = None,
                    actor: str | None = None, action: str | None = None,
                    since: str | None = None, until: str | None = None, limit: int = 100,
                    cursor: str | None = None) -> Page[AuditRow]:
        """The tenant's audit trail in position order (``since`` inclusive and ``until``
        exclusive are RFC 3339 times), from ``cursor`` on."""
        return await self.door.in_thread(self._audit, caller, tenant, key, actor, action,
                                         since, until, limit, cursor)

    def _audit(self, caller: Credential, tenant: str, key: str | None, actor: str | None,
               action: str | None, since: str | None, until: str | None, limit: int,
               cursor: str | None) -> Page[AuditRow]:
        self.door.admit(caller, tenant, UseCase.READ_AUDIT_TRAIL)
        where = AuditFilter(key, actor, action, None if since is None else stored_time(since),
                            None if until is None else stored_time(until))
        tenant_id, _ = self.door.tenant_row(tenant)
        self.door.await_views()  # value reads are recorded outside the tenant's stream
        check_limit(limit)
        scope = ("audit", tenant_id, where.key, where.actor, where.action, where.since,
                 where.until)
        after = int(self.door.cursors.decode(cursor, scope)) if cursor is not None else -1
        for text in (where.key, where.actor):
            if text is not None:
                rules.check_text(text, "a filter")
        rows = self.door.views.audit_page(tenant_id, where, after, limit + 1)
        following = (self.door.cursors.encode(str(rows[limit - 1].position), scope)
                     if len(rows) > limit else None)
        return Page(rows[:limit], following)

    async def verify(self, caller: Credential, tenant: str) -> ChainCheck:
        """Recomputes the tenant's hash chain from the stored events."""
        return await self.door.in_thread(self._verify, caller, tenant)

    def _verify(self, caller: Credential, tenant: str) -> ChainCheck:
        self.door.admit(caller, tenant, UseCase.VERIFY_TENANT)
        rules.check_tenant_name(tenant)
        check = ChainCheck(str(tenant_id_for(tenant)))
        for stored in self.door.streams.stream(tenant_id_for(tenant)):
            check.add(stored.version, stored.decode)
        if check.events == 0:
            raise TenantNotFound("no such tenant")
        if check.ok:
            reads, log = self._tenant_reads_and_log(check.tenant_id)
            for verdict in (reads, log):
                if not verdict.ok:
                    assert verdict.first_bad_position is not None
                    check.fail(verdict.first_bad_position, f"at store position"
                                                           f" {verdict.first_bad_position}:"
                                                           f" {verdict.reason}")
                    break
        return check

    def _log_check(self, tenant_id: str | None) -> LogCheck:
        rows = self.door.ports.log_rows
        check = LogCheck(rows.leaf_rows, tenant_id)
        for checkpoint_of, (size, root) in rows.checkpoint_roots(tenant_id).items():
            check.expect_checkpoint(checkpoint_of, size, root)
        return check

    def _tenant_reads_and_log(self, tenant_id: str, page_size: int = 5000
                              ) -> tuple[TenantReadsCheck, LogCheck]:
        """The tenant's thread through every writer's chain of read records, and its
        transparency log (a scan of the store: read records are stored in batches
        across tenants)."""
        reads, log = TenantReadsCheck(tenant_id), self._log_check(tenant_id)
        position = 0
        while page := self.door.streams.stored_after(position, page_size):
            for stored in page:
                # An undecodable record: whose reads it held is unknown; a gap will show.
                if _records_reads(stored.topic) and (event := _decoded(stored.decode)):
                    reads.add(stored.position, event)
                    log.add(stored.position, event)
                elif ((str(stored.stream_id) == tenant_id or _copied_reads(stored.topic))
                      and (event := _decoded(stored.decode))):
                    log.add(stored.position, event)
            position = page[-1].position
        log.finish(position, [tenant_id])
        return reads, log

    async def verify_logs(self, caller: Credential, page_size: int = 10_000,
                          progress: Callable[[int], None] | None = None) -> LogCheck:
        """Every tenant's transparency log against the records (what replay checks)."""
        return await self.door.in_thread(self._verify_logs, caller, page_size, progress)

    def _verify_logs(self, caller: Credential, page_size: int,
                     progress: Callable[[int], None] | None) -> LogCheck:
        self.door.admit(caller, None, UseCase.VERIFY_ALL)
        logs = self._log_check(None)
        position = 0
        while True:
            try:
                page = self.door.streams.decoded_after(position, page_size)
            except Exception:  # a damaged event: this pass cannot read past it
                logs.fail(position + 1, "a stored record cannot be decoded (run verify)")
                break
            if not page:
                break
            for at, event in page:
                logs.add(at, event)
            position = page[-1][0]
            if progress is not None:
                progress(len(page))
        logs.finish(position, self.door.ports.log_rows.log_tenants())
        return logs

    async def replay_check(self, caller: Credential, chunk: int = CHUNK) -> ReplayedLogs:
        """What replay feeds in its own pass to check every log: a fold of the records up
        to a snapshot of the stored logs (``core.replay_logs``)."""
        await self.door.admitted(caller, None, UseCase.VERIFY_ALL)
        rows = self.door.ports.log_rows
        snapshot = await self.door.in_thread(rows.snapshot)
        return ReplayedLogs(rows, LogFold(snapshot, chunk=chunk))

    async def replay_verdict(self, caller: Credential, check: ReplayedLogs) -> LogCheck:
        """The logs replay recomputed, compared with the stored ones; where any differs,
        every log is checked again record by record, to name the first bad position."""
        await self.door.admitted(caller, None, UseCase.VERIFY_ALL)
        return await self.door.in_thread(self._replay_verdict, caller, check)

    def _replay_verdict(self, caller: Credential, check: ReplayedLogs) -> LogCheck:
        differences, fold = check.differences(), check.fold
        if not differences:
            return LogCheck(check.rows.leaf_rows, heads={tenant_id: log.head
                                                         for tenant_id, log in fold.logs.items()})
        found = self._verify_logs(caller, 10_000, None)
        if found.ok:  # the store changed since (a log rewritten meanwhile): still a failure
            found.fail((fold.failure or (fold.snapshot.position, ""))[0], differences[0])
        return found

    async def verify_all(self, caller: Credential, page_size: int = 5000,
                         progress: Callable[[int], None] | None = None) -> FullScan:
        """Every tenant's chain, in one pass over the event store."""
        return await self.door.in_thread(self._verify_all, caller, page_size, progress)

    def _verify_all(self, caller: Credential, page_size: int,
                    progress: Callable[[int], None] | None) -> FullScan:
        self.door.admit(caller, None, UseCase.VERIFY_ALL)
        scan = FullScan(self._log_check(None))
        position = 0
        while page := self.door.streams.stored_after(position, page_size):
            for stored in page:
                event = _decoded(stored.decode)
                if event is not None:
                    scan.logs.add(stored.position, event)
                decode = stored.decode if event is None else partial(_same, event)
                if _records_reads(stored.topic):  # in the writers' read chains
                    _add_read_record(scan.reads, stored.position, decode)
                    continue
                if _copied_reads(stored.topic):  # a moved tenant's: in its log only
                    continue
                stream = str(stored.stream_id)
                scan.checks.setdefault(stream, ChainCheck(stream)).add(stored.version, decode)
            position = page[-1].position
            if progress is not None:
                progress(len(page))
        scan.logs.finish(position, self.door.ports.log_rows.log_tenants())
        return scan


def _same(event: Any) -> Any:
    return event


def _decoded(decode: Callable[[], Any]) -> Any | None:
    try:
        return decode()
    except Exception:  # a row edited into something undecodable
        return None


def _add_read_record(check: ReadChainsCheck, position: int, decode: Callable[[], Any]) -> None:
    event = _decoded(decode)
    if event is None:
        check.records += 1
        check.fail(position, "the stored read record cannot be decoded")
        return
    check.add(position, event)


def _copied_reads(topic: str) -> bool:
    """Whether a stored topic names a moved tenant's reads copied from its old group."""
    return topic.endswith(COPIED_READS)


def _records_reads(topic: str) -> bool:
    """Whether a stored topic names an event of read records (by the class it resolves
    to: events stored under older module names resolve too). A topic edited into one
    of these hides nothing: the tenant stream it was cut from shows a missing event."""
    try:
        return resolve_topic(topic) in READ_RECORDS
    except Exception:  # an edited, unresolvable topic: the tenant's chain check says so
        return False
