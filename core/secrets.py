"""Writing secrets: new versions (one key or a transaction of several), soft deletes and
undeletes, rollbacks, destruction of versions, and imports of a one-blob object.

Every command runs in the group-commit writer on fresh state: its preconditions are
checked there, and a conflict with another process re-runs it, never overrides it.
Values are sealed there too, each under a fresh data key saved with its event.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from secrets_ledger.core.door import Door
from secrets_ledger.core.envelope import ValueSealer
from secrets_ledger.core.jobs import Effects
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.principals import Credential
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.domain import rules
from secrets_ledger.domain.changes import Change, Precondition, RequestContext, SetValue
from secrets_ledger.domain.errors import (
    InvalidRequest,
    SecretDeleted,
    SecretNotFound,
    TenantShredded,
    VersionNotFound,
)
from secrets_ledger.domain.tenant import Tenant, tenant_id_for
from secrets_ledger.domain.times import format_time, utc_now


@dataclass(frozen=True)
class WriteResult:
    key: str
    version: int
    created_at: str

    @property
    def created(self) -> bool:
        return self.version == 1


def checked_plaintexts(changes: Sequence[Change], values: Mapping[str, Any]) -> dict[str, bytes]:
    """The compact JSON of each value to write, once every change is judged valid."""
    for change in changes:
        rules.check_secret_key(change.key)
        if isinstance(change, SetValue) and change.metadata is not None:
            rules.check_metadata(change.metadata)
    plaintexts = {key: rules.encode_value(value) for key, value in values.items()}
    if not 1 <= len(changes) <= rules.MAX_CHANGES_PER_EVENT:
        raise InvalidRequest("a write holds 1 to 65,536 changes")
    return plaintexts


def _results(outcome: dict[str, Any]) -> list[WriteResult]:
    return [WriteResult(r["key"], r["version"], outcome["created_at"])
            for r in outcome["results"]]


class Secrets:
    def __init__(self, door: Door) -> None:
        self.door = door

    def _writing(self, tenant: str, changes: Sequence[Change], plaintexts: Mapping[str, bytes]
                 ) -> Callable[[Tenant | None, Effects, RequestContext],
                               tuple[Tenant, list[WriteResult]]]:
        envelope = self.door.envelope
        tenant_id = str(tenant_id_for(tenant))

        def run(aggregate: Tenant | None, effects: Effects, ctx: RequestContext
                ) -> tuple[Tenant, list[WriteResult]]:
            written = self.door.existing(aggregate)
            sealer = ValueSealer(envelope, tenant_id, plaintexts)
            at = utc_now()
            versions = written.write(changes, sealer, ctx, at)
            effects.data_keys += sealer.new_keys
            stamp = format_time(at)
            return written, [WriteResult(key, version, stamp) for key, version in versions]

        return run

    async def write(self, caller: Credential, tenant: str, changes: Sequence[Change],
                    values: Mapping[str, Any], request: RequestInfo) -> list[WriteResult]:
        """Applies sets and deletes atomically, in one event; ``values`` are plain JSON
        values by key (one for each set)."""
        plaintexts: dict[str, bytes] = {}

        def check() -> None:
            plaintexts.update(checked_plaintexts(changes, values))

        return await self.door.command(caller, UseCase.WRITE_SECRETS, tenant, request,
                                       self._writing(tenant, changes, plaintexts), _results,
                                       check=check)

    async def put(self, caller: Credential, tenant: str, key: str, value: Any,
                  metadata: dict[str, str] | None, precondition: Precondition | None,
                  request: RequestInfo) -> WriteResult:
        """Writes the next version of one key."""
        change = SetValue(key, metadata=metadata, precondition=precondition)
        [written] = await self.write(caller, tenant, [change], {key: value}, request)
        return written

    async def delete(self, caller: Credential, tenant: str, key: str,
                     precondition: Precondition | None, request: RequestInfo) -> None:
        """Soft-deletes a key (recoverable); a key already deleted records nothing."""
        def run(aggregate: Tenant | None, effects: Effects, ctx: RequestContext
                ) -> tuple[Tenant, None]:
            deleted = self.door.existing(aggregate)
            deleted.delete(key, precondition, ctx, utc_now())
            return deleted, None

        await self.door.command(caller, UseCase.DELETE_SECRET, tenant, request, run,
                                lambda outcome: None, check=lambda: _check_key(key))

    async def undelete(self, caller: Credential, tenant: str, key: str,
                       request: RequestInfo) -> int:
        def run(aggregate: Tenant | None, effects: Effects, ctx: RequestContext
                ) -> tuple[Tenant, int]:
            undeleted = self.door.existing(aggregate)
            return undeleted, undeleted.undelete(key, ctx, utc_now())

        return await self.door.command(caller, UseCase.UNDELETE_SECRET, tenant, request, run,
                                       lambda outcome: int(outcome["version"]),
                                       check=lambda: _check_key(key))

    async def roll_back(self, caller: Credential, tenant: str, key: str, version: int,
                        request: RequestInfo) -> WriteResult:
        """Writes a new version holding the value (and metadata) of ``version``."""
        principal = await self.door.admitted(caller, tenant, UseCase.ROLL_BACK_SECRET)
        plaintext, metadata = await self.door.in_thread(self._old_version, tenant, key,
                                                        version)
        change = SetValue(key, metadata=metadata, rollback_of=version)
        run = self._writing(tenant, [change], {key: plaintext})
        [written] = await self.door.command(principal, UseCase.ROLL_BACK_SECRET, tenant,
                                            request, run, _results)
        return written

    def _old_version(self, tenant: str, key: str, version: int
                     ) -> tuple[bytes, dict[str, str] | None]:
        rules.check_secret_key(key)
        rules.check_version(version)
        tenant_id, shredded_at = self.door.tenant_row(tenant)
        if shredded_at is not None:
            raise TenantShredded("the tenant was shredded; its values are gone")
        state = self.door.views.key_state(tenant_id, key)
        if state is None:
            raise SecretNotFound("no such secret")
        if state[1]:
            raise SecretDeleted("the secret is deleted; undelete it first")
        row = self.door.views.version_row(tenant_id, key, version)
        if row is None:
            raise VersionNotFound("no such version")
        sealed, dek_id, metadata = row
        plaintext = self.door.envelope.open_value(tenant_id, key, version, sealed, dek_id)
        return plaintext, rules.decode_metadata(metadata)

    async def destroy(self, caller: Credential, tenant: str, key: str,
                      versions: Sequence[int], request: RequestInfo) -> list[int]:
        """Makes those versions' values unrecoverable (their data keys are deleted before
        the event is saved); their metadata stays. Returns the versions asked for."""
        principal = await self.door.admitted(caller, tenant, UseCase.DESTROY_VERSIONS)
        tenant_id, known = await self.door.in_thread(self._data_keys, tenant, key, versions)
        envelope = self.door.envelope

        def run(aggregate: Tenant | None, effects: Effects, ctx: RequestContext
                ) -> tuple[Tenant, list[int]]:
            destroyed = self.door.existing(aggregate)
            fresh = destroyed.destroy(key, versions, ctx, utc_now())
            if any(version not in known for version in fresh):
                # Written after this request began: not a version the caller could name.
                raise VersionNotFound("no such version")
            dek_ids = [dek for version in fresh if (dek := known[version]) is not None]
            # Key material goes first: after the acknowledgement nothing can open them.
            effects.before_save.append(
                lambda: envelope.rows.destroy_data_keys(tenant_id, dek_ids))
            return destroyed, fresh

        await self.door.command(principal, UseCase.DESTROY_VERSIONS, tenant, request, run,
                                lambda outcome: list(versions))
        # Answer only once no copy of those keys is left in the database's files.
        await self.door.in_thread(envelope.rows.erase_deleted)
        return sorted(set(versions))

    def _data_keys(self, tenant: str, key: str, versions: Sequence[int]
                   ) -> tuple[str, dict[int, str | None]]:
        rules.check_secret_key(key)
        for version in versions:
            rules.check_version(version)
        tenant_id, _ = self.door.tenant_row(tenant)
        return tenant_id, self.door.views.data_key_ids(tenant_id, key)


def _check_key(key: str) -> None:
    rules.check_secret_key(key)
