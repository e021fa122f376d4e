"""Reading secrets: a value (now, of a version, or as it was at a time), the keys of a
tenant, and the versions of a key.

A value read goes through the group-commit writer, like a write: the writer reads the
rows of every value read in its batch in one statement (the caller's token, the head of
the tenant's stream against the views, the version's row and the rows of the keys that
open it), judges and opens each, and saves the batch's read records with the batch. A
value never leaves before its read is on file; if the record cannot be stored, no value
is returned.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from secrets_ledger.core.door import Door
from secrets_ledger.core.jobs import Job
from secrets_ledger.core.pages import Page, check_limit, check_prefix
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.ports import TenantKeyRow, ValueLookup, ValueRow
from secrets_ledger.core.principals import BearerToken, Credential
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.domain import crypto, rules
from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.domain.errors import (
    InvalidRequest,
    LedgerError,
    SecretDeleted,
    SecretNotFound,
    TenantMoved,
    TenantNotFound,
    TenantShredded,
    Unavailable,
    VersionDestroyed,
    VersionNotFound,
)
from secrets_ledger.domain.reads import ReadRecord
from secrets_ledger.domain.tenant import tenant_id_for
from secrets_ledger.domain.times import stored_time

READ_NOT_RECORDED = "the read could not be recorded; no value returned"
MAX_VIEW_WAITS = 5
EXPORT_PAGE = 100  # keys listed, then read side by side, at a time


@dataclass(frozen=True)
class SecretValue:
    key: str
    version: int
    value: Any = field(repr=False)  # never in a log line
    metadata: dict[str, str] | None
    created_at: str
    created_by: str
    # The value as sealed (its JSON text) and its commitment's opening: a proof of the
    # read binds them to the log (``transparency.value_proof``). Never in a log line.
    stored: bytes | None = field(default=None, repr=False)
    opening: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class VersionInfo:
    version: int
    created_at: str
    created_by: str
    state: str


@dataclass(frozen=True)
class KeyItem:
    key: str
    version: int
    updated_at: str


class _Behind:
    """The views do not hold the tenant's latest events yet: wait, then read again."""


BEHIND = _Behind()


class Reads:
    def __init__(self, door: Door) -> None:
        self.door = door

    async def value(self, caller: Credential, tenant: str, key: str, request: RequestInfo,
                    *, version: int | None = None, at: str | None = None) -> SecretValue:
        """The value of the current version, of ``version``, or of the version current
        ``at`` (an RFC 3339 time). The read is recorded before the value is returned."""
        try:
            if version is not None and at is not None:
                raise InvalidRequest("ask for a version or a time, not both")
            when = None if at is None else stored_time(at)
            rules.check_secret_key(key)
            if version is not None:
                rules.check_version(version)
            rules.check_tenant_name(tenant)
        except LedgerError as error:
            await self.door.refuse(caller, tenant, UseCase.READ_VALUE, error)
        return await self.recorded(caller, tenant, key, request, version, when)

    async def recorded(self, caller: Credential, tenant: str, key: str, request: RequestInfo,
                       version: int | None, when: str | None = None,
                       judge: Callable[[ValueRow], None] | None = None) -> SecretValue:
        """The value of a key whose name and version are checked already (a managed
        secret's key too), read as ``value`` reads it: recorded before it is returned.
        ``judge`` may refuse the row first (nothing is then recorded)."""
        tenant_id = tenant_id_for(tenant)
        digest = caller.digest if isinstance(caller, BearerToken) else None
        lookup = ValueLookup(tenant_id, digest, key, version, when)
        tenant_text = str(tenant_id)
        needed: list[int] = []  # the stream's head when the read was first looked up

        def answer(row: ValueRow, ctx: RequestContext
                   ) -> tuple[SecretValue | _Behind, list[ReadRecord]]:
            """Judges the read's row in the writer, for the admitted caller: the opened value
            and its read record, or BEHIND (nothing to record) while the views lack events
            stored before the read began (later ones need not wait: read-your-writes)."""
            if row.head is not None:
                if not needed:
                    needed.append(int(row.head))
                if row.views_version is None or row.views_version < needed[0]:
                    return BEHIND, []
            if judge is not None:
                judge(row)
            secret = opened_value(self.door, tenant_text, key, version, when, row)
            return secret, [ReadRecord(tenant_text, secret.key, secret.version, ctx.actor,
                                       ctx.request_id)]

        for _ in range(MAX_VIEW_WAITS):
            job: Job[SecretValue | _Behind] = Job(caller, UseCase.READ_VALUE, tenant, request,
                                                 lookup=lookup, answer=answer)
            try:
                found = await self.door.writer.run(job)
            except Unavailable:
                raise Unavailable(READ_NOT_RECORDED) from None
            if isinstance(found, SecretValue):
                return found
            await self.door.in_thread(self.door.await_tenant, tenant_id)
        raise Unavailable("the views are behind the event store; retry shortly")

    async def export(self, caller: Credential, tenant: str, request: RequestInfo, *,
                     at: str | None = None, progress: Callable[[int], None] | None = None
                     ) -> tuple[list[SecretValue], list[str]]:
        """Every live key's value (as they were ``at``), in key order, each read recorded
        as ``value`` records it: an export is as visible in the audit trail as the reads
        it stands for; and the keys left out, whose version was destroyed (no value). A
        page of keys is read at a time, its values side by side (their read records then
        share commits)."""
        await self.door.admitted(caller, tenant, UseCase.READ_VALUE)
        values: list[SecretValue] = []
        destroyed: list[str] = []
        cursor: str | None = None
        while True:
            page = await self.keys(caller, tenant, limit=EXPORT_PAGE, cursor=cursor, at=at)
            read = await asyncio.gather(*[self.value(caller, tenant, item.key, request, at=at)
                                          for item in page.items], return_exceptions=True)
            for item, found in zip(page.items, read, strict=True):
                if isinstance(found, VersionDestroyed):
                    destroyed.append(item.key)
                elif isinstance(found, BaseException):
                    raise found
                else:
                    values.append(found)
            if progress is not None:
                progress(len(page.items))
            if (cursor := page.next_cursor) is None:
                return values, destroyed

    async def keys(self, caller: Credential, tenant: str, *, prefix: str = "",
                   limit: int = 100, cursor: str | None = None,
                   at: str | None = None) -> Page[KeyItem]:
        """Live keys (never values) by key, from ``cursor`` on; as they were ``at``."""
        return await self.door.in_thread(self._keys, caller, tenant, prefix, limit, cursor, at)

    def _keys(self, caller: Credential, tenant: str, prefix: str, limit: int,
              cursor: str | None, at: str | None) -> Page[KeyItem]:
        self.door.admit(caller, tenant, UseCase.LIST_KEYS)
        when = None if at is None else stored_time(at)
        tenant_id, _ = self.door.tenant_row(tenant)
        check_limit(limit)
        check_prefix(prefix)
        scope = ("keys", tenant_id, prefix, when)
        after = self.door.cursors.decode(cursor, scope) if cursor is not None else ""
        rows = self.door.views.keys_page(tenant_id, prefix, after, limit + 1, when)
        items = [KeyItem(str(k), int(v), str(u)) for k, v, u in rows[:limit]]
        following = None
        if len(rows) > limit:
            following = self.door.cursors.encode(items[-1].key, scope)
        return Page(items, following)

    async def versions(self, caller: Credential, tenant: str, key: str
                       ) -> tuple[int, list[VersionInfo]]:
        """The current version number and every version's metadata (never values)."""
        return await self.door.in_thread(self._versions, caller, tenant, key)

    def _versions(self, caller: Credential, tenant: str, key: str
                  ) -> tuple[int, list[VersionInfo]]:
        self.door.admit(caller, tenant, UseCase.LIST_VERSIONS)
        rules.check_secret_key(key)
        tenant_id, _ = self.door.tenant_row(tenant)
        rows = self.door.views.versions(tenant_id, key)
        if not rows:
            raise SecretNotFound("no such secret")
        items = [VersionInfo(int(v), str(c), str(b), str(s)) for v, c, b, s in rows]
        return items[-1].version, items


def opened_value(door: Door, tenant_id: str, key: str, asked: int | None, at: str | None,
                 row: ValueRow) -> SecretValue:
    """The value of a read's row, opened: the checks in the contract's order."""
    if row.head is None:
        raise TenantNotFound("no such tenant")
    if row.moved_to is not None:
        raise TenantMoved("the tenant is moving to another tenant group; retry")
    if row.shredded_at is not None:
        raise TenantShredded("the tenant was shredded; its values are gone")
    if at is not None:
        if row.at_version is None:
            raise SecretNotFound("the secret had no version at that time")
        if not row.at_live:
            raise SecretDeleted("the secret was deleted at that time")
        asked = int(row.at_version)
    if row.current_version is None:
        raise SecretNotFound("no such secret")
    if asked is None and row.deleted:
        raise SecretDeleted("the secret is deleted")
    if row.version is None:
        raise VersionNotFound("no such version")
    version = int(row.version)
    if row.state == "destroyed":
        raise VersionDestroyed("that version was destroyed")
    if row.state == "deleted" and at is None:  # at that time it was live: it still opens
        raise SecretDeleted("that version is deleted")
    tenant_key = (None if row.tenant_key_version is None or row.tenant_key_wrapped is None
                  or row.master_key_id is None else
                  TenantKeyRow(tenant_id, int(row.tenant_key_version), row.tenant_key_wrapped,
                               row.master_key_id))

    opened: list[bytes] = []

    def data_key_of(dek_id: str) -> bytes:
        opened.append(door.envelope.open_data_key(tenant_id, dek_id, row.data_key_wrapped,
                                                  tenant_key))
        return opened[-1]

    plaintext = door.envelope.open_value(tenant_id, key, version, row.ciphertext, row.dek_id,
                                         data_key_of)
    return SecretValue(key, version, rules.decode_value(plaintext),
                       json.loads(row.metadata) if row.metadata else None,
                       str(row.created_at), str(row.created_by), plaintext,
                       crypto.commitment_opening(opened[-1], crypto.value_aad(tenant_id, key,
                                                                              version)))
