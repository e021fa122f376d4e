"""Moving in: a source's key -> value set (a one-blob JSON document, a dotenv file) written
to a tenant atomically and idempotently, or compared with it first (a dry run)."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class ImportDiff:
    """What an import would change in a tenant, by key and version, never by value."""

    added: list[str] = field(default_factory=list)
    changed: list[tuple[str, int]] = field(default_factory=list)  # key, current version
    unchanged: list[tuple[str, int]] = field(default_factory=list)
    missing: list[tuple[str, int]] = field(default_factory=list)  # in the tenant only

    @property
    def agrees(self) -> bool:
        """Whether the source and the tenant hold the same keys with the same values."""
        return not (self.added or self.changed or self.missing)

    def changes(self) -> list[Change]:
        """A write of each added or changed key, on condition that it is still at the
        version compared with."""
        expected = {key: Precondition("absent") for key in self.added}
        expected |= {key: Precondition("version", version) for key, version in self.changed}
        return [SetValue(key, precondition=expected[key]) for key in sorted(expected)]


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
            diff = await self.door.in_thread(self._compared, tenant_id, plaintexts, False,
                                             progress)
            if not (changes := diff.changes()):
                return []
            try:
                return await self.secrets.write(principal, tenant, changes, values, request)
            except LedgerError as error:
                if error.code != "version_conflict":
                    raise
        raise Unavailable("the tenant kept changing during the import; retry")

    async def diff(self, caller: Credential, tenant: str, values: Mapping[str, Any], *,
                   create_tenant: bool = False,
                   progress: Callable[[int], None] | None = None) -> ImportDiff:
        """What importing ``values`` would change (a dry run: nothing is written). A tenant
        that does not exist yet is all additions if ``create_tenant``."""
        await self.door.admitted(caller, tenant, UseCase.IMPORT_SECRETS)
        plaintexts = check_import(tenant, values)
        return await self.door.in_thread(self._compared, tenant_id_for(tenant), plaintexts,
                                         create_tenant, progress)

    def _compared(self, tenant_id: UUID, plaintexts: Mapping[str, bytes], create_tenant: bool,
                  progress: Callable[[int], None] | None) -> ImportDiff:
        if self.door.await_tenant(tenant_id) is None:
            if create_tenant:
                return ImportDiff(added=sorted(plaintexts))
            raise TenantNotFound("no such tenant: create it first (or pass --create-tenant)")
        current = self.door.views.current_versions(str(tenant_id))
        diff = ImportDiff(missing=sorted((key, version) for key, version in current.items()
                                         if key not in plaintexts))
        for key, plaintext in sorted(plaintexts.items()):
            if progress is not None:
                progress(1)
            version = current.get(key)
            if version is None:
                diff.added.append(key)
            elif self._holds(str(tenant_id), key, version, plaintext):
                diff.unchanged.append((key, version))
            else:
                diff.changed.append((key, version))
        return diff

    def _holds(self, tenant_id: str, key: str, version: int, plaintext: bytes) -> bool:
        row = self.door.views.version_row(tenant_id, key, version)
        if row is None:
            return False
        try:
            stored = self.door.envelope.open_value(tenant_id, key, version, row[0], row[1])
        except LedgerError:
            return False
        return hmac.compare_digest(stored, plaintext)
