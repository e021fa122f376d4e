"""The ledger's use cases, free of HTTP: every front end (REST today, Vault- or AWS-style
façades later, the CLI) calls these methods and nothing below them.

Writes run one at a time per tenant inside this process (a lock per tenant), on a
cached aggregate that is fast-forwarded from the store before each command, so that a
tenant with a long history costs what a new one costs. A conflict on the aggregate's
version (another process wrote first) is retried with fresh state, re-checking every
precondition; a precondition that no longer holds is reported, never overridden.
Queries read the projected views after waiting until they include every event stored
before the query began (read-your-writes).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

from domain import crypto, rules
from domain.errors import (
    CannotOpen,
    IdempotencyKeyReused,
    InvalidRequest,
    LedgerError,
    SecretDeleted,
    SecretNotFound,
    TenantExists,
    TenantNotFound,
    TenantShredded,
    Unavailable,
    VersionDestroyed,
    VersionNotFound,
)
from domain.reads import ValueRead
from domain.tenant import (
    Change,
    Precondition,
    RequestContext,
    SealedValue,
    SetValue,
    Tenant,
    tenant_id_for,
)
from projections.projector import Projector
from service.clock import format_time, utc_now
from service.keystore import KeyStore, NewDataKey
from service.pages import CursorCodec
from service.storage import Storage
from service.verify import ChainCheck, verify_tenant
from service.writer import BatchWriter, Command, Effects

T = TypeVar("T")
Item = TypeVar("Item")
MAX_ATTEMPTS = 25
AGGREGATE_CACHE_SIZE = 2_000


@dataclass(frozen=True)
class WriteResult:
    key: str
    version: int
    created_at: str

    @property
    def created(self) -> bool:
        return self.version == 1


@dataclass(frozen=True)
class SecretValue:
    key: str
    version: int
    value: Any
    metadata: dict[str, str] | None
    created_at: str
    created_by: str


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


@dataclass(frozen=True)
class AuditItem:
    position: int
    at: str
    action: str
    key: str | None
    version: int | None
    actor: str
    request_id: str


@dataclass(frozen=True)
class Page(Generic[Item]):
    items: list[Item]
    next_cursor: str | None


@dataclass(frozen=True)
class AuditFilter:
    key: str | None = None
    actor: str | None = None
    action: str | None = None
    since: str | None = None
    until: str | None = None


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


class Ledger:
    def __init__(self, storage: Storage, projector: Projector | None = None) -> None:
        self.storage = storage
        self.db = storage.db
        self.keys = storage.keys
        self.events = storage.events
        self.projector = projector or Projector(storage.db, storage.source)
        self.cursors = CursorCodec(storage.keys.master.current)
        self._collate = ' COLLATE "C"' if self.db.dialect == "postgres" else ""
        self.on_saved: Callable[[], None] = lambda: None  # a front end's metrics hook
        self.writer = BatchWriter(storage.events, storage.keys, self._saved,
                                  self._idempotent_outcome)

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
        self._await_views()
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT request_hash, result FROM idempotency_records"
                " WHERE tenant_id = %s AND idempotency_key = %s",
                (str(tenant_id), ctx.idempotency_key),
            )
            row = cur.fetchone()
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

        return self._command(name, ctx, run, replayed)

    def put_secret(self, name: str, key: str, value: Any, metadata: dict[str, str] | None,
                   precondition: Precondition | None, ctx: RequestContext) -> WriteResult:
        change = SetValue(key, metadata=metadata, precondition=precondition)
        return self.write_secrets(name, [change], {key: value}, ctx)[0]

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
            self._await_views()
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

    # ---- reads and queries ------------------------------------------------------------

    def _await_views(self) -> None:
        target = self.storage.source.max_position()
        if not self.projector.wait_for(target, self.storage.settings.read_your_writes_timeout):
            raise Unavailable("the views are behind the event store; retry shortly")

    def _tenant_row(self, name: str) -> tuple[str, str | None]:
        """(tenant id, shredded_at) of a known tenant, after the views caught up."""
        rules.check_tenant_name(name)
        self._await_views()
        with self.db.transaction() as cur:
            cur.execute("SELECT tenant_id, shredded_at FROM tenants WHERE tenant = %s", (name,))
            row = cur.fetchone()
        if row is None:
            raise TenantNotFound("no such tenant")
        return str(row[0]), row[1]

    def _key_state(self, tenant_id: str, key: str) -> tuple[int, bool]:
        """(latest version, deleted) of a key in the current view; SecretNotFound if none."""
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT version, deleted FROM current_secrets WHERE tenant_id = %s AND key = %s",
                (tenant_id, key),
            )
            row = cur.fetchone()
        if row is None:
            raise SecretNotFound("no such secret")
        return int(row[0]), bool(row[1])

    def _open_version(self, tenant_id: str, key: str, version: int) -> bytes:
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT ciphertext, dek_id FROM secret_versions"
                " WHERE tenant_id = %s AND key = %s AND version = %s",
                (tenant_id, key, version),
            )
            row = cur.fetchone()
        if row is None:
            raise VersionNotFound("no such version")
        if row[0] is None or row[1] is None:
            raise VersionDestroyed("that version was destroyed")
        try:
            data_key = self.keys.data_key(tenant_id, row[1])
            return crypto.open_sealed(data_key, crypto.from_text(row[0]),
                                      crypto.value_aad(tenant_id, key, version))
        except CannotOpen:
            raise VersionDestroyed("that version can no longer be opened") from None

    def _same_value(self, tenant_id: str, key: str, version: int, plaintext: bytes) -> bool:
        try:
            return hmac.compare_digest(self._open_version(tenant_id, key, version), plaintext)
        except LedgerError:
            return False

    def _metadata_of(self, tenant_id: str, key: str, version: int) -> dict[str, str] | None:
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT metadata FROM secret_versions"
                " WHERE tenant_id = %s AND key = %s AND version = %s",
                (tenant_id, key, version),
            )
            row = cur.fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def _data_key_ids(self, tenant_id: str, key: str) -> dict[int, str | None]:
        """Every version of the key the views know, with its data key (None once destroyed)."""
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT version, dek_id FROM secret_versions WHERE tenant_id = %s AND key = %s",
                (tenant_id, key),
            )
            return {int(version): dek for version, dek in cur.fetchall()}

    def _current_versions(self, tenant_id: str) -> dict[str, int]:
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT key, version FROM current_secrets WHERE tenant_id = %s AND NOT deleted",
                (tenant_id,),
            )
            return {str(key): int(version) for key, version in cur.fetchall()}

    def _version_at(self, tenant_id: str, key: str, at: str) -> int:
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT version, live FROM key_timeline WHERE tenant_id = %s AND key = %s"
                " AND at <= %s ORDER BY position DESC LIMIT 1",
                (tenant_id, key, at),
            )
            row = cur.fetchone()
        if row is None:
            raise SecretNotFound("the secret had no version at that time")
        if not row[1]:
            raise SecretDeleted("the secret was deleted at that time")
        return int(row[0])

    def get_secret(self, name: str, key: str, ctx: RequestContext, version: int | None = None,
                   at: str | None = None) -> SecretValue:
        """The value of the current version, of ``version``, or of the one current ``at``.

        The read is recorded in the audit trail before the value is returned; if it
        cannot be recorded, no value is returned.
        """
        rules.check_secret_key(key)
        if version is not None:
            rules.check_version(version)
        tenant_id, shredded_at = self._tenant_row(name)
        if shredded_at is not None:
            raise TenantShredded("the tenant was shredded; its values are gone")
        if at is not None:
            version = self._version_at(tenant_id, key, at)
        latest, deleted = self._key_state(tenant_id, key)
        if version is None:
            if deleted:
                raise SecretDeleted("the secret is deleted")
            version = latest
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT state, metadata, created_at, created_by FROM secret_versions"
                " WHERE tenant_id = %s AND key = %s AND version = %s",
                (tenant_id, key, version),
            )
            row = cur.fetchone()
        if row is None:
            raise VersionNotFound("no such version")
        state, metadata, created_at, created_by = row
        if state == "destroyed":
            raise VersionDestroyed("that version was destroyed")
        if state == "deleted" and at is None:  # at that time it was live: it still opens
            raise SecretDeleted("that version is deleted")
        plaintext = self._open_version(tenant_id, key, version)
        self._record_read(tenant_id, key, version, ctx)
        return SecretValue(key, version, rules.decode_value(plaintext),
                           json.loads(metadata) if metadata else None, created_at, created_by)

    def _record_read(self, tenant_id: str, key: str, version: int, ctx: RequestContext) -> None:
        record = ValueRead.record(UUID(tenant_id), key, version, ctx.actor, ctx.request_id,
                                  utc_now())
        try:
            self.writer.record_read(record)
        except Exception:
            raise Unavailable("the read could not be recorded; no value returned") from None

    def list_versions(self, name: str, key: str) -> tuple[int, list[VersionInfo]]:
        rules.check_secret_key(key)
        tenant_id, _ = self._tenant_row(name)
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT version, created_at, created_by, state FROM secret_versions"
                " WHERE tenant_id = %s AND key = %s ORDER BY version",
                (tenant_id, key),
            )
            rows = cur.fetchall()
        if not rows:
            raise SecretNotFound("no such secret")
        items = [VersionInfo(int(v), str(c), str(b), str(s)) for v, c, b, s in rows]
        return items[-1].version, items

    def list_keys(self, name: str, prefix: str = "", limit: int = 100,
                  cursor: str | None = None, at: str | None = None) -> Page[KeyItem]:
        tenant_id, _ = self._tenant_row(name)
        check_limit(limit)
        check_prefix(prefix)
        scope = ("keys", tenant_id, prefix, at)
        after = self.cursors.decode(cursor, scope) if cursor is not None else ""
        key = f"key{self._collate}"
        if at is None:
            sql = (
                "SELECT key, version, updated_at FROM current_secrets"
                f" WHERE tenant_id = %s AND NOT deleted AND substr(key, 1, %s) = %s"
                f" AND {key} > %s ORDER BY {key} LIMIT %s"
            )
            params: tuple[Any, ...] = (tenant_id, len(prefix), prefix, after, limit + 1)
        else:
            sql = (
                "SELECT k.key, k.version, k.at FROM key_timeline k"
                " WHERE k.tenant_id = %s AND substr(k.key, 1, %s) = %s"
                f" AND k.{key} > %s AND k.live AND k.position = (SELECT MAX(position)"
                " FROM key_timeline l WHERE l.tenant_id = k.tenant_id AND l.key = k.key"
                f" AND l.at <= %s) ORDER BY k.{key} LIMIT %s"
            )
            params = (tenant_id, len(prefix), prefix, after, at, limit + 1)
        with self.db.transaction() as cur:
            cur.execute(sql, params)
            rows = cur.fetchall()
        items = [KeyItem(str(k), int(v), str(u)) for k, v, u in rows[:limit]]
        following = None
        if len(rows) > limit:
            following = self.cursors.encode(items[-1].key, scope)
        return Page(items, following)

    def audit(self, name: str, where: AuditFilter, limit: int = 100,
              cursor: str | None = None) -> Page[AuditItem]:
        tenant_id, _ = self._tenant_row(name)
        check_limit(limit)
        scope = ("audit", tenant_id, where.key, where.actor, where.action, where.since,
                 where.until)
        after = int(self.cursors.decode(cursor, scope)) if cursor is not None else -1
        for text in (where.key, where.actor):
            if text is not None:
                rules.check_text(text, "a filter")
        clauses, params = ["tenant_id = %s", "position > %s"], [tenant_id, after]
        for column, value, operator in (("key", where.key, "="), ("actor", where.actor, "="),
                                        ("action", where.action, "="),
                                        ("at", where.since, ">="), ("at", where.until, "<")):
            if value is not None:
                clauses.append(f"{column} {operator} %s")
                params.append(value)
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT position, at, action, key, version, actor, request_id FROM audit_trail"
                f" WHERE {' AND '.join(clauses)} ORDER BY position LIMIT %s",
                (*params, limit + 1),
            )
            rows = cur.fetchall()
        items = [AuditItem(int(p), str(a), str(ac), k, v, str(who), str(r))
                 for p, a, ac, k, v, who, r in rows[:limit]]
        following = self.cursors.encode(str(items[-1].position), scope) if len(
            rows) > limit else None
        return Page(items, following)

    def list_tenants(self) -> list[tuple[str, str, str | None]]:
        self._await_views()
        with self.db.transaction() as cur:
            cur.execute("SELECT tenant, created_at, shredded_at FROM tenants ORDER BY tenant")
            return [(str(t), str(c), s) for t, c, s in cur.fetchall()]

    def verify(self, name: str) -> ChainCheck:
        rules.check_tenant_name(name)
        check = verify_tenant(self.events, tenant_id_for(name))
        if check.events == 0:
            raise TenantNotFound("no such tenant")
        return check


def check_import(name: str, values: Mapping[str, Any]) -> dict[str, bytes]:
    """Checks a whole one-blob import before anything is written; returns the plaintexts."""
    rules.check_tenant_name(name)
    if len(values) > rules.MAX_CHANGES_PER_EVENT:
        raise InvalidRequest("an import holds at most 65,536 keys")
    for key in values:
        rules.check_secret_key(key)
    return {key: rules.encode_value(value) for key, value in values.items()}


def check_prefix(prefix: str) -> None:
    if prefix and not all(c.isascii() and (c.isalnum() or c in "._/-") for c in prefix):
        raise InvalidRequest("a prefix uses the characters of secret keys: [A-Za-z0-9._/-]")


def check_limit(limit: int) -> None:
    if not 1 <= limit <= 1000:
        raise InvalidRequest("limit is 1-1000")
