"""Managed secrets' commands (``domain.managed``): create, write a version, update the
metadata, move a label, tag, schedule or cancel deletion, purge.

Each runs in the group-commit writer on fresh state, like every command. A client
version id used again is answered here, outside the writer: the stored version is opened
and compared with the value sent (never returned); the same value is the first write
repeated (its result, nothing written), another value a conflict.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Sequence
from datetime import datetime, timedelta

from secrets_ledger.core.door import Door
from secrets_ledger.core.envelope import ValueSealer
from secrets_ledger.core.jobs import Effects
from secrets_ledger.core.managed_purges import KnownKeys, destroy_before_save, with_known_keys
from secrets_ledger.core.managed_repeats import repeated_write
from secrets_ledger.core.managed_values import (
    Deleted,
    ManagedValue,
    SecretRef,
    Written,
    encode_managed,
    labels_of,
)
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.principals import Credential
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.domain import managed
from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.domain.errors import (
    InvalidRequest,
    SecretNotFound,
    VersionIdInUse,
)
from secrets_ledger.domain.managed import SecretMetadata
from secrets_ledger.domain.managed_state import ManagedState
from secrets_ledger.domain.tenant import Tenant, tenant_id_for
from secrets_ledger.domain.times import format_time, utc_now

SUFFIX_ALPHABET = string.ascii_letters


def _suffix() -> str:
    return "".join(secrets.choice(SUFFIX_ALPHABET) for _ in range(6))


class ManagedCommands:
    def __init__(self, door: Door) -> None:
        self.door = door

    async def create(self, caller: Credential, tenant: str, space: str, name: str,
                     metadata: SecretMetadata, value: ManagedValue | None, client_id: str,
                     request: RequestInfo) -> Written:
        key = managed.managed_key(space, name)
        plaintexts = {} if value is None else {key: encode_managed(value)}
        envelope, tenant_id = self.door.envelope, str(tenant_id_for(tenant))

        purged_any: list[bool] = []

        async def attempt(known: KnownKeys) -> Written:
            def run(aggregate: Tenant, effects: Effects, ctx: RequestContext) -> Written:
                sealer = ValueSealer(envelope, tenant_id, plaintexts)
                first = (None if value is None
                         else managed.NewVersion(client_id, [managed.CURRENT]))
                suffix = _suffix()
                version, purged = managed.create(aggregate, space, name, suffix, metadata,
                                                 first, sealer, ctx, utc_now())
                effects.data_keys += sealer.new_keys
                destroy_before_save(self.door, tenant, effects, known, {key: purged})
                purged_any[:] = [bool(purged)]
                if version is None:
                    return Written(name, suffix)
                return Written(name, suffix, client_id, (managed.CURRENT,))

            return await self.door.on_tenant(caller, UseCase.WRITE_SECRETS, tenant, request, run)

        try:
            written = await with_known_keys(self.door, caller, UseCase.WRITE_SECRETS, tenant,
                                            [key], attempt)
        except VersionIdInUse:
            return await repeated_write(self.door, tenant, space, SecretRef(name), client_id,
                                        plaintexts.get(key))
        if any(purged_any):  # an incarnation past its window was purged with this create
            await self.door.in_thread(self.door.envelope.rows.erase_deleted)
        return written

    async def put(self, caller: Credential, tenant: str, space: str, ref: SecretRef,
                  value: ManagedValue, client_id: str, labels: Sequence[str],
                  request: RequestInfo) -> Written:
        plaintext = encode_managed(value)
        envelope, tenant_id = self.door.envelope, str(tenant_id_for(tenant))

        def run(aggregate: Tenant, effects: Effects, ctx: RequestContext) -> Written:
            at = utc_now()
            key, state = _resolved(aggregate, space, ref, at)
            managed.check_new_client_id(state, client_id)
            managed.check_not_scheduled(state)
            sealer = ValueSealer(envelope, tenant_id, {key: plaintext})
            version = managed.write_version(aggregate, key, managed.NewVersion(
                client_id, labels), sealer, ctx, at)
            effects.data_keys += sealer.new_keys
            return Written(state["name"], state["suffix"], client_id,
                           labels_of(aggregate.managed[key]["labels"], version))

        try:
            return await self.door.on_tenant(caller, UseCase.WRITE_SECRETS, tenant, request, run)
        except VersionIdInUse:
            return await repeated_write(self.door, tenant, space, ref, client_id, plaintext)

    async def update(self, caller: Credential, tenant: str, space: str, ref: SecretRef,
                     description: str | None, kms_key_id: str | None,
                     value: ManagedValue | None, client_id: str,
                     request: RequestInfo) -> Written:
        """New metadata (None: unchanged) and, with a value, a new current version."""
        plaintext = None if value is None else encode_managed(value)
        envelope, tenant_id = self.door.envelope, str(tenant_id_for(tenant))

        def run(aggregate: Tenant, effects: Effects, ctx: RequestContext) -> Written:
            at = utc_now()
            key, state = _resolved(aggregate, space, ref, at)
            if plaintext is not None:
                managed.check_new_client_id(state, client_id)
            managed.check_not_scheduled(state)
            managed.update_metadata(aggregate, key, SecretMetadata(
                state["description"] if description is None else description,
                state["kms_key_id"] if kms_key_id is None else kms_key_id,
                state["tags"]), ctx, at)
            if plaintext is None:
                return Written(state["name"], state["suffix"])
            sealer = ValueSealer(envelope, tenant_id, {key: plaintext})
            managed.write_version(aggregate, key, managed.NewVersion(
                client_id, [managed.CURRENT]), sealer, ctx, at)
            effects.data_keys += sealer.new_keys
            return Written(state["name"], state["suffix"], client_id, (managed.CURRENT,))

        try:
            return await self.door.on_tenant(caller, UseCase.WRITE_SECRETS, tenant, request, run)
        except VersionIdInUse:
            return await repeated_write(self.door, tenant, space, ref, client_id, plaintext)

    async def tag(self, caller: Credential, tenant: str, space: str, ref: SecretRef,
                  add: Sequence[tuple[str, str]], remove: Sequence[str],
                  request: RequestInfo) -> Written:
        """Adds (or replaces) tags, and removes tags by key."""
        def run(aggregate: Tenant, effects: Effects, ctx: RequestContext) -> Written:
            at = utc_now()
            key, state = _resolved(aggregate, space, ref, at)
            tags = {k: v for k, v in state["tags"] or []}
            tags.update(add)
            for gone in remove:
                tags.pop(gone, None)
            managed.update_metadata(aggregate, key, SecretMetadata(
                state["description"], state["kms_key_id"], [[k, v] for k, v in tags.items()]),
                ctx, at)
            return Written(state["name"], state["suffix"])

        return await self.door.on_tenant(caller, UseCase.WRITE_SECRETS, tenant, request, run)

    async def move_label(self, caller: Credential, tenant: str, space: str, ref: SecretRef,
                         label: str, move_to: str | None, remove_from: str | None,
                         request: RequestInfo) -> Written:
        """Moves a label between versions named by their client ids."""
        def run(aggregate: Tenant, effects: Effects, ctx: RequestContext) -> Written:
            at = utc_now()
            key, state = _resolved(aggregate, space, ref, at)
            ids = state["ids"]
            for client_id in (remove_from, move_to):
                if client_id is not None and client_id not in ids:
                    raise InvalidRequest(f"Not a valid version: {client_id}")
            source = None if remove_from is None else ids[remove_from]
            if source is not None and state["labels"].get(label) != source:
                raise InvalidRequest(f"Version stage {label} not found in version {remove_from}")
            holder = state["labels"].get(label)
            if source is None and label == managed.CURRENT and holder is not None:
                holder_id = next(c for c, v in ids.items() if v == holder)
                raise InvalidRequest(
                    "The parameter RemoveFromVersionId can't be empty. Staging label"
                    f" AWSCURRENT is currently attached to version {holder_id}, so you must"
                    " explicitly reference that version in RemoveFromVersionId.")
            if source is None and holder is not None:
                source = holder  # another label simply moves
            target = None if move_to is None else ids[move_to]
            managed.move_label(aggregate, key, label, target, source, ctx, at)
            return Written(state["name"], state["suffix"])

        return await self.door.on_tenant(caller, UseCase.WRITE_SECRETS, tenant, request, run)

    async def delete(self, caller: Credential, tenant: str, space: str, ref: SecretRef,
                     recovery_days: int | None, force: bool, request: RequestInfo) -> Deleted:
        """Schedules deletion after the recovery window (30 days unless given), or purges
        at once with ``force`` (then a secret that does not exist is no error)."""
        use_case = UseCase.DESTROY_VERSIONS if force else UseCase.DELETE_SECRET

        async def attempt(known: KnownKeys) -> Deleted:
            def run(aggregate: Tenant, effects: Effects, ctx: RequestContext) -> Deleted:
                at = utc_now()
                try:
                    key, state = _resolved(aggregate, space, ref, at)
                except SecretNotFound:
                    if not force:
                        raise
                    return Deleted(ref.text, _suffix(), format_time(at))
                if force:
                    destroy_before_save(self.door, tenant, effects, known,
                                        {key: managed.purge_now(aggregate, key, ctx, at)})
                    return Deleted(state["name"], state["suffix"], format_time(at))
                purge_after = at + timedelta(days=recovery_days or 30)
                managed.schedule_deletion(aggregate, key, purge_after, ctx, at)
                return Deleted(state["name"], state["suffix"], format_time(purge_after))

            return await self.door.on_tenant(caller, use_case, tenant, request, run)

        if not force:
            return await attempt({})
        keys = [managed.managed_key(space, name) for name in ref.candidates()]
        deleted = await with_known_keys(self.door, caller, use_case, tenant, keys, attempt)
        # Answer once no copy of the purged keys is left in the database's files.
        await self.door.in_thread(self.door.envelope.rows.erase_deleted)
        return deleted

    async def restore(self, caller: Credential, tenant: str, space: str, ref: SecretRef,
                      request: RequestInfo) -> Written:
        def run(aggregate: Tenant, effects: Effects, ctx: RequestContext) -> Written:
            at = utc_now()
            key, state = _resolved(aggregate, space, ref, at)
            managed.restore(aggregate, key, ctx, at)
            return Written(state["name"], state["suffix"])

        return await self.door.on_tenant(caller, UseCase.UNDELETE_SECRET, tenant, request, run)


def _resolved(aggregate: Tenant, space: str, ref: SecretRef, at: datetime
              ) -> tuple[str, ManagedState]:
    """The key and state of the secret ``ref`` names in the aggregate."""
    for name, suffix in ref.readings():
        key = managed.managed_key(space, name)
        state = managed.live_secret(aggregate, key, at)
        if state is not None and (suffix is None or state["suffix"] == suffix):
            aggregate.check_not_shredded()
            return key, state
    aggregate.check_not_shredded()
    raise SecretNotFound("no such secret")
