"""Moving in: a source's key -> value set (a one-blob JSON document, a dotenv file) written
to a tenant atomically and idempotently, or compared with it first (a dry run); or a
source's versions of each key (``histories``: AWS Secrets Manager's, Vault's), oldest
first, each with its own metadata (the source's labels)."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from secrets_ledger.core.door import Door
from secrets_ledger.core.envelope import ValueSealer
from secrets_ledger.core.jobs import Effects
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.principals import Credential
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.core.secrets import Secrets, WriteResult
from secrets_ledger.core.tenants import Tenants
from secrets_ledger.domain import rules
from secrets_ledger.domain.changes import Change, Precondition, RequestContext, SetValue
from secrets_ledger.domain.errors import (
    InvalidRequest,
    LedgerError,
    TenantExists,
    TenantNotFound,
    Unavailable,
)
from secrets_ledger.domain.tenant import Tenant, tenant_id_for
from secrets_ledger.domain.times import format_time, utc_now

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


Version = tuple[Any, dict[str, str] | None]
"""One version of a source's key: its value, and the metadata to write with it."""


@dataclass(frozen=True)
class HistoryDiff(ImportDiff):
    """``ImportDiff`` of histories: ``pending`` is how many of each key's versions would be
    written (its oldest ones are in the tenant already when fewer than all)."""

    pending: dict[str, int] = field(default_factory=dict)


def check_histories(tenant: str, histories: Mapping[str, Sequence[Version]]
                    ) -> dict[str, list[tuple[bytes, dict[str, str] | None]]]:
    """Checks every version of a history import before anything is written."""
    check_import(tenant, {key: None for key in histories})
    if sum(len(history) for history in histories.values()) > rules.MAX_CHANGES_PER_EVENT:
        raise InvalidRequest("an import holds at most 65,536 versions")
    checked = {}
    for key, history in histories.items():
        if not history:
            raise InvalidRequest(f"{key}: no version to import")
        for _, metadata in history:
            if metadata is not None:
                rules.check_metadata(metadata)
        checked[key] = [(rules.encode_value(value), metadata) for value, metadata in history]
    return checked


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
        stored = self.current_plaintext(tenant_id, key, version)
        return stored is not None and hmac.compare_digest(stored, plaintext)

    def current_plaintext(self, tenant_id: str, key: str, version: int) -> bytes | None:
        """A version's plaintext, to compare with a source's (None: not readable)."""
        row = self.door.views.version_row(tenant_id, key, version)
        if row is None:
            return None
        try:
            return self.door.envelope.open_value(tenant_id, key, version, row[0], row[1])
        except LedgerError:
            return None

    async def histories(self, caller: Credential, tenant: str,
                        histories: Mapping[str, Sequence[Version]], request: RequestInfo, *,
                        create_tenant: bool = False,
                        progress: Callable[[int], None] | None = None) -> list[WriteResult]:
        """Each key's versions, in the source's order, appended to the tenant's in one
        atomic save: the tenant's current value is looked for among the source's
        versions, and only the ones after it are written (all of them when it is not
        there), so importing twice writes nothing and a source that moved on adds only
        its new versions."""
        principal = await self.door.admitted(caller, tenant, UseCase.IMPORT_SECRETS)
        checked = check_histories(tenant, histories)
        if create_tenant:
            with suppress(TenantExists):
                await self.tenants.open(principal, tenant, request)
        for _ in range(MAX_ATTEMPTS):
            diff = await self.door.in_thread(self._compared_histories, tenant_id_for(tenant),
                                             checked, False, progress)
            if not diff.pending:
                return []
            try:
                return await self.door.command(principal, UseCase.IMPORT_SECRETS, tenant,
                                               request, self._layers(tenant, checked, diff))
            except LedgerError as error:
                if error.code != "version_conflict":
                    raise
        raise Unavailable("the tenant kept changing during the import; retry")

    async def history_diff(self, caller: Credential, tenant: str,
                           histories: Mapping[str, Sequence[Version]], *,
                           create_tenant: bool = False,
                           progress: Callable[[int], None] | None = None) -> HistoryDiff:
        """What ``histories`` would write (a dry run)."""
        await self.door.admitted(caller, tenant, UseCase.IMPORT_SECRETS)
        checked = check_histories(tenant, histories)
        return await self.door.in_thread(self._compared_histories, tenant_id_for(tenant),
                                         checked, create_tenant, progress)

    def _layers(self, tenant: str, histories: Mapping[str, list[tuple[bytes, Any]]],
                diff: HistoryDiff) -> Any:
        """The command: one event per layer (the i-th pending version of every key that
        has one), all saved together; the first layer holds the diff's preconditions."""
        envelope, tenant_id = self.door.envelope, str(tenant_id_for(tenant))
        expected = {change.key: change.precondition for change in diff.changes()}

        def run(aggregate: Tenant | None, effects: Effects, ctx: RequestContext
                ) -> tuple[Tenant, list[WriteResult]]:
            written, at = self.door.existing(aggregate), utc_now()
            results: list[WriteResult] = []
            for layer in range(max(diff.pending.values())):
                versions = {key: histories[key][len(histories[key]) - count + layer]
                            for key, count in sorted(diff.pending.items()) if layer < count}
                sealer = ValueSealer(envelope, tenant_id,
                                     {key: plain for key, (plain, _) in versions.items()})
                changes = [SetValue(key, metadata=metadata,
                                    precondition=expected[key] if layer == 0 else None)
                           for key, (_, metadata) in versions.items()]
                stamp = format_time(at)
                results += [WriteResult(key, version, stamp)
                            for key, version in written.write(changes, sealer, ctx, at)]
                effects.data_keys += sealer.new_keys
            return written, results

        return run

    def _compared_histories(self, tenant_id: UUID,
                            histories: Mapping[str, list[tuple[bytes, Any]]],
                            create_tenant: bool, progress: Callable[[int], None] | None
                            ) -> HistoryDiff:
        latest = {key: history[-1][0] for key, history in histories.items()}
        plain = self._compared(tenant_id, latest, create_tenant, progress)
        pending = {key: len(histories[key]) for key in plain.added}
        for key, version in plain.changed:
            current = self.current_plaintext(str(tenant_id), key, version)
            found = [n for n, (text, _) in enumerate(histories[key])
                     if current is not None and hmac.compare_digest(text, current)]
            pending[key] = len(histories[key]) - (found[-1] + 1 if found else 0)
        return HistoryDiff(plain.added, plain.changed, plain.unchanged, plain.missing,
                           pending)
