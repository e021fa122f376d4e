"""Managed secrets' queries: describe, list, the versions and their labels (never values),
and value reads, each recorded before the value is returned, exactly as a native read."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from secrets_ledger.core.door import Door
from secrets_ledger.core.managed_values import (
    ManagedValue,
    SecretRef,
    decode_managed,
    labels_of,
    live_row,
    resolve,
)
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.ports import ManagedRow, ValueRow
from secrets_ledger.core.principals import Credential, Principal
from secrets_ledger.core.reads import Reads
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.domain import managed
from secrets_ledger.domain.errors import (
    InvalidRequest,
    LedgerError,
    SecretDeleted,
    SecretNotFound,
    VersionNotFound,
)
from secrets_ledger.domain.times import format_time, utc_now


def _live(purge_after: str | None) -> bool:
    return purge_after is None or purge_after > format_time(utc_now())


@dataclass(frozen=True)
class ManagedSecretValue:
    row: ManagedRow
    client_id: str
    labels: tuple[str, ...]
    created_at: str
    value: ManagedValue = field(repr=False)  # never in a log line


class ManagedReads:
    def __init__(self, door: Door, reads: Reads) -> None:
        self.door = door
        self.reads = reads

    async def describe(self, caller: Credential, tenant: str, space: str,
                       ref: SecretRef) -> ManagedRow:
        return await self.door.in_thread(self._find, caller, tenant, space, ref,
                                          UseCase.LIST_VERSIONS)

    async def listing(self, caller: Credential, tenant: str, space: str,
                      include_deleted: bool) -> list[ManagedRow]:
        return await self.door.in_thread(self._listing, caller, tenant, space,
                                          include_deleted)

    def _listing(self, caller: Credential, tenant: str, space: str,
                 include_deleted: bool) -> list[ManagedRow]:
        self.door.admit(caller, tenant, UseCase.LIST_KEYS)
        tenant_id, _ = self.door.tenant_row(tenant)
        now = utc_now()
        return [row for row in self.door.views.managed_secrets(tenant_id, space)
                if live_row(row, now) and (include_deleted or row.deleted_at is None)]

    def _find(self, caller: Credential, tenant: str, space: str, ref: SecretRef,
              use_case: UseCase) -> ManagedRow:
        self.door.admit(caller, tenant, use_case)
        tenant_id, _ = self.door.tenant_row(tenant)
        now = utc_now()
        rows = self.door.views.managed_secrets(tenant_id, space, ref.candidates())
        row = resolve(ref, [r for r in rows if live_row(r, now)])
        if row is None:
            raise SecretNotFound("no such secret")
        return row

    async def value(self, caller: Credential, tenant: str, space: str, ref: SecretRef,
                    client_id: str | None, label: str | None,
                    request: RequestInfo) -> ManagedSecretValue:
        """The version named by its client id, or by a label (``AWSCURRENT`` if
        neither): refused while the secret is scheduled for deletion."""
        if client_id is None and label is None and not ref.from_arn:
            return await self._current(caller, tenant, space, ref.text, request)
        principal = await self.door.admitted(caller, tenant, UseCase.READ_VALUE)
        row = await self.door.in_thread(self._find, principal, tenant, space, ref,
                                        UseCase.READ_VALUE)
        return await self._value(principal, tenant, row, client_id, label, request)

    async def _current(self, caller: Credential, tenant: str, space: str, name: str,
                       request: RequestInfo) -> ManagedSecretValue:
        """The current value by name: one recorded read, the caller admitted and the
        secret's row judged in the writer's statement (as a native read: the common
        case, and the fast one)."""
        seen: list[ValueRow] = []

        def judge(row: ValueRow) -> None:
            if row.managed_suffix is None or not _live(row.managed_purge_after):
                raise SecretNotFound("no such secret")
            if row.current_version is None:
                raise VersionNotFound("no such version", label=managed.CURRENT)
            seen.append(row)

        secret = await self.reads.recorded(caller, tenant, managed.managed_key(space, name),
                                           request, None, judge=judge)
        row = seen[-1]
        labels = json.loads(row.managed_labels or "{}")
        facts = ManagedRow(secret.key, name, str(row.managed_suffix), "", "", None, None, None,
                           labels, None, row.managed_purge_after, [])
        return ManagedSecretValue(facts, str(row.managed_client_id),
                                  labels_of(labels, secret.version), secret.created_at,
                                  decode_managed(secret.value))

    async def _value(self, principal: Principal, tenant: str, row: ManagedRow,
                     client_id: str | None, label: str | None,
                     request: RequestInfo) -> ManagedSecretValue:
        ids = {v.client_id: v.version for v in row.versions}
        if client_id is not None and label is not None and client_id in ids and (
                row.labels.get(label) != ids[client_id]):
            raise InvalidRequest("You provided a VersionStage that is not associated to"
                                 " the provided VersionId.")
        if client_id is None and label is not None and label not in row.labels:
            raise SecretNotFound("no such secret")
        if row.deleted_at is not None:
            raise SecretDeleted("the secret is scheduled for deletion")
        if client_id is not None:
            version = ids.get(client_id)
            if version is None:
                raise VersionNotFound("no such version", version_id=client_id)
        else:
            version = row.labels.get(label or managed.CURRENT)
            if version is None:
                raise VersionNotFound("no such version", label=label or managed.CURRENT)
        secret = await self.reads.recorded(principal, tenant, row.key, request, version)
        found = next(v.client_id for v in row.versions if v.version == version)
        created = next(v.created_at for v in row.versions if v.version == version)
        return ManagedSecretValue(row, found, labels_of(row.labels, version), created,
                                  decode_managed(secret.value))

    async def values(self, caller: Credential, tenant: str, space: str,
                     refs: Sequence[SecretRef], request: RequestInfo
                     ) -> list[ManagedSecretValue | LedgerError]:
        """Each secret's current value (one recorded read each; the writer batches them),
        or why it cannot be read."""
        principal = await self.door.admitted(caller, tenant, UseCase.READ_VALUE)

        async def one(ref: SecretRef) -> ManagedSecretValue | LedgerError:
            try:
                return await self.value(principal, tenant, space, ref, None, None, request)
            except (SecretNotFound, SecretDeleted, VersionNotFound) as error:
                return error

        return list(await asyncio.gather(*(one(ref) for ref in refs)))
