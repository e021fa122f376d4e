"""The ledger's use cases, free of HTTP: every front end (REST today, Vault- or AWS-style
façades later, the CLI) calls these methods and nothing below them.

Commands are closures run by the group-commit writer (``service.writer``) against the
tenant's aggregate, so that every precondition is checked on fresh state and a conflict
with another process is retried, never overridden. Work that needs the views (opening
an old version for a rollback, naming data keys to destroy) happens here, before the
command is handed over. The queries live in ``service.queries``.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from secrets_ledger.domain import crypto, rules
from secrets_ledger.domain.errors import (
    CannotOpen,
    IdempotencyKeyReused,
    InvalidRequest,
    LedgerError,
    SecretDeleted,
    TenantExists,
    TenantNotFound,
    TenantShredded,
    Unavailable,
    VersionNotFound,
)
from secrets_ledger.domain.tenant import (
    Change,
    Precondition,
    RequestContext,
    SealedValue,
    SetValue,
    Tenant,
    tenant_id_for,
)
from secrets_ledger.projections.projector import Projector
from secrets_ledger.service.clock import format_time, utc_now
from secrets_ledger.service.database import fetch_all, fetch_one
from secrets_ledger.service.keystore import KeyStore, NewDataKey
from secrets_ledger.service.principals import TOKEN_COLUMNS
from secrets_ledger.service.queries import LedgerQueries
from secrets_ledger.service.storage import Storage
from secrets_ledger.service.writer import BatchWriter, Command, Effects

T = TypeVar("T")
Item = TypeVar("Item")
MAX_ATTEMPTS = 25


@dataclass(frozen=True)
class WriteResult:
    key: str
    version: int
    created_at: str

    @property
    def created(self) -> bool:
        return self.version == 1


class _ValueSealer:
    """Seals each value under a fresh data key wrapped by the tenant key in force."""

    def __init__(self, keys: KeyStore, tenant_id: str, plaintexts: Mapping[str, bytes]) -> None:
        self._keys = keys
        self._tenant_id = tenant_id
        self._plaintexts = plaintexts
        self._tenant_keys: dict[int, bytes] = {}
        self.new_keys: list[NewDataKey] = []

    def __call__(self, key: str, version: int, key_version: int) -> SealedValue:
        if key_version not in self._tenant_keys:
            try:
                self._tenant_keys[key_version] = self._keys.tenant_key(self._tenant_id,
                                                                       key_version)
            except CannotOpen:
                raise Unavailable("the tenant key cannot be opened") from None
        data_key = self._keys.new_data_key(self._tenant_id, key_version,
                                           self._tenant_keys[key_version])
        self.new_keys.append(data_key)
        sealed = crypto.seal(data_key.key, self._plaintexts[key],
                             crypto.value_aad(self._tenant_id, key, version))
        return SealedValue(crypto.to_text(sealed), data_key.dek_id)


class Ledger(LedgerQueries):
    """The commands; the queries come from ``LedgerQueries``."""

    def __init__(self, storage: Storage, projector: Projector | None = None) -> None:
        super().__init__(storage, projector or Projector(storage.db, storage.source))
        self.on_saved: Callable[[], None] = lambda: None  # a front end's metrics hook
        self.writer = BatchWriter(storage.events, storage.keys, self._saved,
                                  self._idempotent_outcome, self._token_rows,
                                  self.value_rows)

    def _saved(self) -> None:
        self.projector.wake.set()
        self.on_saved()

    # ---- the write path -----------------------------------------------------------------

    def _command(self, tenant_name: str, ctx: RequestContext, run: Command[T],
                 replayed: Callable[[dict[str, Any]], T] | None = None) -> T:
        """Runs a command on the tenant's aggregate through the group-commit writer."""
        rules.check_tenant_name(tenant_name)
        tenant_id = tenant_id_for(tenant_name)
        if ctx.idempotency_key is not None and replayed is not None:
            previous = self._idempotent_outcome(tenant_id, ctx)
            if previous is not None:
                return replayed(previous)
        return self.writer.execute(tenant_id, ctx, run, replayed)

    def close(self) -> None:
        self.writer.close()

    def _idempotent_outcome(self, tenant_id: UUID, ctx: RequestContext) -> dict[str, Any] | None:
        if self._await_tenant(tenant_id) is None:
            return None
        row = fetch_one(
            self.db,
            "SELECT request_hash, result FROM idempotency_records"
            " WHERE tenant_id = %s AND idempotency_key = %s",
            (str(tenant_id), ctx.idempotency_key),
        )
        if row is None:
            return None
        if not hmac.compare_digest(str(row[0] or ""), ctx.request_hash or ""):
            raise IdempotencyKeyReused("this Idempotency-Key was used for another request")
        outcome: dict[str, Any] = json.loads(row[1])
        return outcome

    @staticmethod
    def _existing(tenant: Tenant | None) -> Tenant:
        if tenant is None:
            raise TenantNotFound("no such tenant")
        return tenant

    # ---- tenant commands --------------------------------------------------------------

    def open_tenant(self, name: str, ctx: RequestContext) -> str:
        def run(tenant: Tenant | None, effects: Effects) -> tuple[Tenant, str]:
            if tenant is not None:
                raise TenantExists("the tenant exists already")
            opened = Tenant.open(name, ctx, utc_now())
            effects.before_save.append(
                lambda: self.keys.create_tenant_key(str(opened.id), opened.key_version)
            )
            return opened, format_time(opened.created_on)

        return self._command(name, ctx, run)

    def rotate_tenant_key(self, name: str, ctx: RequestContext) -> int:
        def run(tenant: Tenant | None, effects: Effects) -> tuple[Tenant, int]:
            tenant = self._existing(tenant)
            version = tenant.rotate_key(ctx, utc_now())
            effects.before_save.append(
                lambda: self.keys.create_tenant_key(str(tenant.id), version)
            )
            return tenant, version

        return self._command(name, ctx, run, lambda outcome: int(outcome["version"]))

    def shred_tenant(self, name: str, ctx: RequestContext) -> str:
        def run(tenant: Tenant | None, effects: Effects) -> tuple[Tenant, str]:
            tenant = self._existing(tenant)
            at = utc_now()
            tenant.shred(ctx, at)
            # Keys go first: once the event is acknowledged, nothing can open a value.
            effects.before_save.append(lambda: self.keys.shred_tenant(str(tenant.id)))
            return tenant, format_time(at)

        return self._command(name, ctx, run)

    def record_token_issued(self, name: str, token_id: str, role: str,
                            expires_at: str | None, ctx: RequestContext) -> None:
        def run(tenant: Tenant | None, effects: Effects) -> tuple[Tenant, None]:
            tenant = self._existing(tenant)
            tenant.issue_token(token_id, role, expires_at, ctx, utc_now())
            return tenant, None

        self._command(name, ctx, run)

    def record_token_revoked(self, name: str, token_id: str, ctx: RequestContext) -> None:
        def run(tenant: Tenant | None, effects: Effects) -> tuple[Tenant, None]:
            tenant = self._existing(tenant)
            tenant.revoke_token(token_id, ctx, utc_now())
            return tenant, None

        self._command(name, ctx, run)

    # ---- secret commands --------------------------------------------------------------

    def write_secrets(self, name: str, changes: Sequence[Change],
                      values: Mapping[str, Any], ctx: RequestContext) -> list[WriteResult]:
        """Applies sets and deletes atomically in one event; values are plain JSON values."""
        return self._command(name, ctx, *self._write_command(name, changes, values, ctx))

    def put_secret(self, name: str, key: str, value: Any, metadata: dict[str, str] | None,
                   precondition: Precondition | None, ctx: RequestContext) -> WriteResult:
        change = SetValue(key, metadata=metadata, precondition=precondition)
        return self.write_secrets(name, [change], {key: value}, ctx)[0]

    async def put_secret_with_token_async(
            self, name: str, key: str, value: Any, metadata: dict[str, str] | None,
            token_hash: str, check: Callable[[Sequence[Any] | None], RequestContext]
            ) -> WriteResult:
        """``put_secret`` (no precondition, no idempotency key) for the holder of a token,
        for a caller on an event loop: the group commit is awaited, not waited for in a
        thread, and the token's row is read by the writer with its batch's others.

        ``check`` gets the token's ``TOKEN_COLUMNS`` row, raises unless that token may
        write this tenant's values, and returns the request's context; the write's own
        checks come after it, as in the separate steps. ``name`` must be a valid tenant
        name (the caller judged it: an invalid one is a 400 before any token check).
        """
        tenant_id = tenant_id_for(rules.check_tenant_name(name))
        change = SetValue(key, metadata=metadata)

        def authorized(row: Sequence[Any] | None) -> Command[list[WriteResult]]:
            return self._write_command(name, [change], {key: value}, check(row))[0]

        written = await self.writer.execute_with_token_async(tenant_id, token_hash, authorized)
        return written[0]

    def _token_rows(self, hashes: Sequence[str]) -> dict[str, Sequence[Any]]:
        """The ``TOKEN_COLUMNS`` rows of the tokens with these hashes, by hash."""
        marks = ", ".join(["%s"] * len(hashes))
        rows = fetch_all(self.db, f"SELECT {TOKEN_COLUMNS} FROM tokens"
                                  f" WHERE token_hash IN ({marks})", hashes)
        return {str(row[1]): row for row in rows}

    def _write_command(self, name: str, changes: Sequence[Change], values: Mapping[str, Any],
                       ctx: RequestContext
                       ) -> tuple[Command[list[WriteResult]],
                                  Callable[[dict[str, Any]], list[WriteResult]]]:
        """The checked command of ``write_secrets`` and its answer to a replayed request."""
        for change in changes:
            rules.check_secret_key(change.key)
            if isinstance(change, SetValue) and change.metadata is not None:
                rules.check_metadata(change.metadata)
        plaintexts = {key: rules.encode_value(value) for key, value in values.items()}
        if not 1 <= len(changes) <= rules.MAX_CHANGES_PER_EVENT:
            raise InvalidRequest("a write holds 1 to 65,536 changes")
        tenant_id = str(tenant_id_for(rules.check_tenant_name(name)))

        def run(tenant: Tenant | None, effects: Effects) -> tuple[Tenant, list[WriteResult]]:
            tenant = self._existing(tenant)
            sealer = _ValueSealer(self.keys, tenant_id, plaintexts)
            at = utc_now()
            written = tenant.write(changes, sealer, ctx, at)
            effects.data_keys += sealer.new_keys
            stamp = format_time(at)
            return tenant, [WriteResult(key, version, stamp) for key, version in written]

        def replayed(outcome: dict[str, Any]) -> list[WriteResult]:
            return [WriteResult(r["key"], r["version"], outcome["created_at"])
                    for r in outcome["results"]]

        return run, replayed

    def delete_secret(self, name: str, key: str, precondition: Precondition | None,
                      ctx: RequestContext) -> None:
        rules.check_secret_key(key)

        def run(tenant: Tenant | None, effects: Effects) -> tuple[Tenant, None]:
            tenant = self._existing(tenant)
            tenant.delete(key, precondition, ctx, utc_now())
            return tenant, None

        self._command(name, ctx, run, lambda outcome: None)

    def undelete_secret(self, name: str, key: str, ctx: RequestContext) -> int:
        rules.check_secret_key(key)

        def run(tenant: Tenant | None, effects: Effects) -> tuple[Tenant, int]:
            tenant = self._existing(tenant)
            return tenant, tenant.undelete(key, ctx, utc_now())

        return self._command(name, ctx, run, lambda outcome: int(outcome["version"]))

    def rollback_secret(self, name: str, key: str, version: int,
                        ctx: RequestContext) -> WriteResult:
        """Writes a new version holding the value (and metadata) of ``version``."""
        rules.check_secret_key(key)
        rules.check_version(version)
        tenant_id, shredded_at = self._tenant_row(name)
        if shredded_at is not None:
            raise TenantShredded("the tenant was shredded; its values are gone")
        if self._key_state(tenant_id, key)[1]:
            raise SecretDeleted("the secret is deleted; undelete it first")
        plaintext = self._open_version(tenant_id, key, version)
        metadata = self._metadata_of(tenant_id, key, version)

        def run(tenant: Tenant | None, effects: Effects) -> tuple[Tenant, WriteResult]:
            tenant = self._existing(tenant)
            sealer = _ValueSealer(self.keys, tenant_id, {key: plaintext})
            at = utc_now()
            change = SetValue(key, metadata=metadata, rollback_of=version)
            [(_, written)] = tenant.write([change], sealer, ctx, at)
            effects.data_keys += sealer.new_keys
            return tenant, WriteResult(key, written, format_time(at))

        def replayed(outcome: dict[str, Any]) -> WriteResult:
            [result] = outcome["results"]
            return WriteResult(result["key"], result["version"], outcome["created_at"])

        return self._command(name, ctx, run, replayed)

    def destroy_versions(self, name: str, key: str, versions: Sequence[int],
                         ctx: RequestContext) -> list[int]:
        rules.check_secret_key(key)
        for version in versions:
            rules.check_version(version)
        tenant_id, _ = self._tenant_row(name)
        known = self._data_key_ids(tenant_id, key)

        def run(tenant: Tenant | None, effects: Effects) -> tuple[Tenant, list[int]]:
            tenant = self._existing(tenant)
            fresh = tenant.destroy(key, versions, ctx, utc_now())
            if any(version not in known for version in fresh):
                # Written after this request began: not a version the caller could name.
                raise VersionNotFound("no such version")
            dek_ids = [dek for version in fresh if (dek := known[version]) is not None]
            # Key material goes first: after the acknowledgement nothing can open them.
            effects.before_save.append(lambda: self.keys.destroy_data_keys(tenant_id, dek_ids))
            return tenant, fresh

        return self._command(name, ctx, run, lambda outcome: list(versions))

    def import_secrets(self, name: str, values: Mapping[str, Any], ctx: RequestContext,
                       progress: Callable[[int], None] | None = None) -> list[WriteResult]:
        """Writes every key whose value differs from the current one, in one event."""
        plaintexts = check_import(name, values)
        with suppress(TenantExists):
            self.open_tenant(name, ctx)
        tenant_id = str(tenant_id_for(name))
        for _ in range(MAX_ATTEMPTS):
            self._await_tenant(UUID(tenant_id))
            current = self._current_versions(tenant_id)
            changes: list[Change] = []
            for key, plaintext in sorted(plaintexts.items()):
                if progress is not None:
                    progress(1)
                version = current.get(key)
                if version is not None and self._same_value(tenant_id, key, version, plaintext):
                    continue
                expected = Precondition("absent") if version is None else Precondition(
                    "version", version)
                changes.append(SetValue(key, precondition=expected))
            if not changes:
                return []
            try:
                return self.write_secrets(name, changes, values, ctx)
            except LedgerError as error:
                if error.code != "version_conflict":
                    raise
        raise Unavailable("the tenant kept changing during the import; retry")

def check_import(name: str, values: Mapping[str, Any]) -> dict[str, bytes]:
    """Checks a whole one-blob import before anything is written; returns the plaintexts."""
    rules.check_tenant_name(name)
    if len(values) > rules.MAX_CHANGES_PER_EVENT:
        raise InvalidRequest("an import holds at most 65,536 keys")
    for key in values:
        rules.check_secret_key(key)
    return {key: rules.encode_value(value) for key, value in values.items()}
