"""Moving in: a one-blob JSON object of key -> value (the format users leave behind) written
to a tenant atomically and idempotently."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import Any
from uuid import UUID

from secrets_ledger.core.door import Door
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.principals import Credential
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.core.secrets import Secrets, WriteResult
from secrets_ledger.core.tenants import Tenants
from secrets_ledger.domain import rules
from secrets_ledger.domain.changes import Change, Precondition, SetValue
from secrets_ledger.domain.errors import (
    InvalidRequest,
    LedgerError,
    TenantExists,
    TenantNotFound,
    Unavailable,
)
from secrets_ledger.domain.tenant import tenant_id_for

MAX_ATTEMPTS = 25


def check_import(tenant: str, values: Mapping[str, Any]) -> dict[str, bytes]:
    """Checks a whole one-blob import before anything is written; returns the plaintexts."""
    rules.check_tenant_name(tenant)
    if len(values) > rules.MAX_CHANGES_PER_EVENT:
        raise InvalidRequest("an import holds at most 65,536 keys")
    for key in values:
        rules.check_secret_key(key)
    return {key: rules.encode_value(value) for key, value in values.items()}


class Imports:
    def __init__(self, door: Door, tenants: Tenants, secrets: Secrets) -> None:
        self.door = door
        self.tenants = tenants
        self.secrets = secrets

    async def json_object(self, caller: Credential, tenant: str, values: Mapping[str, Any],
                          request: RequestInfo, *, create_tenant: bool = False,
                          progress: Callable[[int], None] | None = None) -> list[WriteResult]:
        """Writes every key whose value differs from its current one, in one event (keys
        already holding their value are not written again: importing twice writes
        nothing). The tenant must exist unless ``create_tenant``."""
        principal = await self.door.admitted(caller, tenant, UseCase.IMPORT_SECRETS)
        plaintexts = check_import(tenant, values)
        if create_tenant:
            with suppress(TenantExists):
                await self.tenants.open(principal, tenant, request)
        tenant_id = tenant_id_for(tenant)
        for _ in range(MAX_ATTEMPTS):
            changes = await self.door.in_thread(self._changes, tenant_id, plaintexts, progress)
            if not changes:
                return []
            try:
                return await self.secrets.write(principal, tenant, changes, values, request)
            except LedgerError as error:
                if error.code != "version_conflict":
                    raise
        raise Unavailable("the tenant kept changing during the import; retry")

    def _changes(self, tenant_id: UUID, plaintexts: Mapping[str, bytes],
                 progress: Callable[[int], None] | None) -> list[Change]:
        """A write of each key whose current value differs, on condition that it is still
        at the version compared with."""
        if self.door.await_tenant(tenant_id) is None:
            raise TenantNotFound("no such tenant: create it first (or pass --create-tenant)")
        current = self.door.views.current_versions(str(tenant_id))
        changes: list[Change] = []
        for key, plaintext in sorted(plaintexts.items()):
            if progress is not None:
                progress(1)
            version = current.get(key)
            if version is not None and self._holds(str(tenant_id), key, version, plaintext):
                continue
            expected = Precondition("absent") if version is None else Precondition(
                "version", version)
            changes.append(SetValue(key, precondition=expected))
        return changes

    def _holds(self, tenant_id: str, key: str, version: int, plaintext: bytes) -> bool:
        row = self.door.views.version_row(tenant_id, key, version)
        if row is None:
            return False
        try:
            stored = self.door.envelope.open_value(tenant_id, key, version, row[0], row[1])
        except LedgerError:
            return False
        return hmac.compare_digest(stored, plaintext)
