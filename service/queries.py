"""The ledger's queries: values, versions, listings, the audit trail and verification.

Every query first waits until the views include every event stored before it began
(read-your-writes), then reads the views. A value read is recorded in the audit trail,
durably, before the value is returned.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

from secrets_ledger.domain import crypto, rules
from secrets_ledger.domain.errors import (
    CannotOpen,
    InvalidRequest,
    LedgerError,
    SecretDeleted,
    SecretNotFound,
    TenantNotFound,
    TenantShredded,
    Unavailable,
    VersionDestroyed,
    VersionNotFound,
)
from secrets_ledger.domain.reads import ReadRecord
from secrets_ledger.domain.tenant import RequestContext, tenant_id_for
from secrets_ledger.projections.projector import Projector
from secrets_ledger.service.database import fetch_all, fetch_one
from secrets_ledger.service.pages import CursorCodec
from secrets_ledger.service.principals import TOKEN_COLUMNS, TOKEN_ROW
from secrets_ledger.service.storage import Storage
from secrets_ledger.service.verify import ChainCheck, verify_tenant
from secrets_ledger.service.writer import BatchWriter

Item = TypeVar("Item")
READ_NOT_RECORDED = "the read could not be recorded; no value returned"
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")


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


class LedgerQueries:
    writer: BatchWriter  # read records are stored through the command side's writer

    def __init__(self, storage: Storage, projector: Projector) -> None:
        self.storage = storage
        self.db = storage.db
        self.keys = storage.keys
        self.events = storage.events
        self.projector = projector
        self.cursors = CursorCodec(storage.keys.master.current)
        self._collate = ' COLLATE "C"' if self.db.dialect == "postgres" else ""
        self._read_statement: str | None = None

    def _await_views(self) -> None:
        target = self.storage.source.max_position()
        if not self.projector.wait_for(target, self.storage.settings.read_your_writes_timeout):
            raise Unavailable("the views are behind the event store; retry shortly")

    def _tenant_row(self, name: str) -> tuple[str, str | None]:
        """(tenant id, shredded_at) of a known tenant, once the views hold every event of
        its stream stored before this call (read-your-writes for that tenant)."""
        rules.check_tenant_name(name)
        tenant_id = tenant_id_for(name)
        found = self._await_tenant(tenant_id)
        if found is None:
            raise TenantNotFound("no such tenant")
        return str(tenant_id), found[0]

    def _await_tenant(self, tenant_id: UUID) -> tuple[str | None] | None:
        """Waits until the views hold every event of the tenant's stream stored before this
        call; returns (shredded_at,), or None when the tenant has no stream."""
        latest = self.events.recorder.select_events(tenant_id, desc=True, limit=1)
        if not latest:
            return None
        target = latest[0].originator_version
        found: list[tuple[str | None]] = []

        def caught_up() -> bool:
            row = fetch_one(self.db, "SELECT shredded_at, version FROM tenants"
                            " WHERE tenant_id = %s", (str(tenant_id),))
            if row is None or int(row[1]) < target:
                return False
            found.append((row[0],))
            return True

        if not self.projector.wait_until(caught_up, self.storage.settings.read_your_writes_timeout):
            raise Unavailable("the views are behind the event store; retry shortly")
        return found[-1]

    def _key_state(self, tenant_id: str, key: str) -> tuple[int, bool]:
        """(latest version, deleted) of a key in the current view; SecretNotFound if none."""
        row = fetch_one(
            self.db,
            "SELECT version, deleted FROM current_secrets WHERE tenant_id = %s AND key = %s",
            (tenant_id, key),
        )
        if row is None:
            raise SecretNotFound("no such secret")
        return int(row[0]), bool(row[1])

    def _open_version(self, tenant_id: str, key: str, version: int) -> bytes:
        row = fetch_one(
            self.db,
            "SELECT ciphertext, dek_id FROM secret_versions"
            " WHERE tenant_id = %s AND key = %s AND version = %s",
            (tenant_id, key, version),
        )
        if row is None:
            raise VersionNotFound("no such version")
        return self._open_sealed(tenant_id, key, version, row[0], row[1])

    def _open_sealed(self, tenant_id: str, key: str, version: int, sealed: str | None,
                     dek_id: str | None,
                     data_key_of: Callable[[str], bytes] | None = None) -> bytes:
        if sealed is None or dek_id is None:
            raise VersionDestroyed("that version was destroyed")
        try:
            if data_key_of is None:
                data_key = self.keys.data_key(tenant_id, dek_id)
            else:
                data_key = data_key_of(dek_id)
            return crypto.open_sealed(data_key, crypto.from_text(sealed),
                                      crypto.value_aad(tenant_id, key, version))
        except CannotOpen:
            raise VersionDestroyed("that version can no longer be opened") from None

    def _same_value(self, tenant_id: str, key: str, version: int, plaintext: bytes) -> bool:
        try:
            return hmac.compare_digest(self._open_version(tenant_id, key, version), plaintext)
        except LedgerError:
            return False

    def _metadata_of(self, tenant_id: str, key: str, version: int) -> dict[str, str] | None:
        row = fetch_one(
            self.db,
            "SELECT metadata FROM secret_versions"
            " WHERE tenant_id = %s AND key = %s AND version = %s",
            (tenant_id, key, version),
        )
        return json.loads(row[0]) if row and row[0] else None

    def _data_key_ids(self, tenant_id: str, key: str) -> dict[int, str | None]:
        """Every version of the key the views know, with its data key (None once destroyed)."""
        with self.db.read() as cur:
            cur.execute(
                "SELECT version, dek_id FROM secret_versions WHERE tenant_id = %s AND key = %s",
                (tenant_id, key),
            )
            return {int(version): dek for version, dek in cur.fetchall()}

    def _current_versions(self, tenant_id: str) -> dict[str, int]:
        with self.db.read() as cur:
            cur.execute(
                "SELECT key, version FROM current_secrets WHERE tenant_id = %s AND NOT deleted",
                (tenant_id,),
            )
            return {str(key): int(version) for key, version in cur.fetchall()}

    def _version_at(self, tenant_id: str, key: str, at: str) -> int:
        row = fetch_one(
            self.db,
            "SELECT version, live FROM key_timeline WHERE tenant_id = %s AND key = %s"
            " AND at <= %s ORDER BY position DESC LIMIT 1",
            (tenant_id, key, at),
        )
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
        tenant_id, value = self._find_value(name, key, version, at)
        self._record_read(tenant_id, value, ctx)
        return value

    def _find_value(self, name: str, key: str, version: int | None, at: str | None
                    ) -> tuple[str, SecretValue]:
        """``get_secret`` up to its read record: the tenant's id and the opened value."""
        rules.check_secret_key(key)
        if version is not None:
            rules.check_version(version)
        tenant_id, shredded_at = self._tenant_row(name)
        if shredded_at is not None:
            raise TenantShredded("the tenant was shredded; its values are gone")
        if at is not None:
            version = self._version_at(tenant_id, key, at)
        # One round trip: the key's current state and the wanted version's row.
        row = fetch_one(
            self.db,
            "SELECT c.version, c.deleted, v.version, v.state, v.metadata, v.created_at,"
            " v.created_by, v.ciphertext, v.dek_id FROM current_secrets c"
            " LEFT JOIN secret_versions v ON v.tenant_id = c.tenant_id AND v.key = c.key"
            " AND v.version = COALESCE(%s, c.version)"
            " WHERE c.tenant_id = %s AND c.key = %s",
            (version, tenant_id, key),
        )
        return tenant_id, self._open_value(tenant_id, key, version, at, row)

    def _open_value(self, tenant_id: str, key: str, version: int | None, at: str | None,
                    row: Sequence[Any] | None,
                    data_key_of: Callable[[str], bytes] | None = None) -> SecretValue:
        """The value of a (current_secrets LEFT JOIN secret_versions) row, opened; the
        caller records the read before handing it out."""
        if row is None or row[0] is None:
            raise SecretNotFound("no such secret")
        deleted, found, state, metadata, created_at, created_by, sealed, dek_id = row[1:9]
        if version is None and deleted:
            raise SecretDeleted("the secret is deleted")
        if found is None:
            raise VersionNotFound("no such version")
        version = int(found)
        if state == "destroyed":
            raise VersionDestroyed("that version was destroyed")
        if state == "deleted" and at is None:  # at that time it was live: it still opens
            raise SecretDeleted("that version is deleted")
        plaintext = self._open_sealed(tenant_id, key, version, sealed, dek_id, data_key_of)
        return SecretValue(key, version, rules.decode_value(plaintext),
                           json.loads(metadata) if metadata else None, created_at, created_by)

    def get_secret_with_token(self, name: str, key: str, token_hash: str,
                              check: Callable[[Sequence[Any] | None], RequestContext]
                              ) -> SecretValue:
        """``get_secret`` of the current value for the holder of a token, with the token's
        row read in the same statement as everything the read needs.

        ``check`` gets the token's row (token_id, token_hash, role, tenant, expires_at,
        revoked_at; NULLs when no token has that hash), raises if that token may not read
        this tenant's values, and returns the request's context. It runs before anything
        about the tenant or the key is judged, so errors come in the order of the
        separate steps. On PostgreSQL one round trip reads the token, the head of the
        tenant's stream, the tenant's view row (read-your-writes: its version against
        that head, in the same snapshot), the key's current version and its data and
        tenant keys; when the view is behind it falls back to ``get_secret``, which waits.
        """
        if not self._one_statement_read(name, key):
            return self.get_secret(name, key, self._check_token(token_hash, check))
        tenant_id = tenant_id_for(name)
        row = self.value_rows([self._read_params(tenant_id, key, token_hash)])[0]
        ctx, value = self._value_of_read_row(str(tenant_id), key, row, check)
        if value is None:
            return self.get_secret(name, key, ctx)  # waits until the views hold the head
        self._record_read(str(tenant_id), value, ctx)
        return value

    async def get_secret_with_token_async(
            self, name: str, key: str, token_hash: str,
            check: Callable[[Sequence[Any] | None], RequestContext]) -> SecretValue:
        """``get_secret_with_token`` for a caller on an event loop, with no thread waiting
        for it: the group-commit writer reads the rows of every such read in its batch
        in one statement (``value_rows``), opens each value and saves the read records
        with the batch (``BatchWriter.read_async``). Only a read that has to wait for
        the views, and every read on SQLite, is found in a thread (its read record is
        still awaited here: no thread waits for the group commit)."""
        if not self._one_statement_read(name, key):
            ctx = await asyncio.to_thread(self._check_token, token_hash, check)
            return await self._found_and_recorded(name, key, ctx)
        tenant_uuid = tenant_id_for(name)
        tenant_id = str(tenant_uuid)

        def answer(row: Sequence[Any]) -> tuple[tuple[RequestContext, SecretValue | None],
                                                list[Any]]:
            ctx, value = self._value_of_read_row(tenant_id, key, row, check)
            if value is None:
                return (ctx, None), []
            return (ctx, value), [self._read_record(tenant_id, value, ctx)]

        try:
            ctx, value = await self.writer.read_async(
                self._read_params(tenant_uuid, key, token_hash), answer)
        except Unavailable:
            raise Unavailable(READ_NOT_RECORDED) from None
        if value is None:  # the views are behind: wait for them in a thread
            return await self._found_and_recorded(name, key, ctx)
        return value

    async def _found_and_recorded(self, name: str, key: str, ctx: RequestContext
                                  ) -> SecretValue:
        """``get_secret`` of the current value for a caller on an event loop."""
        tenant_id, value = await asyncio.to_thread(self._find_value, name, key, None, None)
        try:
            await self.writer.record_read_async(self._read_record(tenant_id, value, ctx))
        except Exception:
            raise Unavailable(READ_NOT_RECORDED) from None
        return value

    def _one_statement_read(self, name: str, key: str) -> bool:
        """Whether a token's read of this current value can be one statement: PostgreSQL
        (on SQLite the event store is another file) and well-formed names (otherwise
        the separate steps say what is wrong, in their order)."""
        if self.db.dialect != "postgres":
            return False
        try:
            rules.check_secret_key(key)
            rules.check_tenant_name(name)
        except InvalidRequest:
            return False
        return True

    @staticmethod
    def _read_params(tenant_id: UUID, key: str, token_hash: str) -> tuple[Any, ...]:
        return tenant_id, str(tenant_id), token_hash, key

    def value_rows(self, lookups: Sequence[tuple[Any, ...]]) -> list[Sequence[Any]]:
        """The rows of ``_read_sql`` for many reads (``_read_params`` each) in one
        statement, in the order asked (PostgreSQL)."""
        columns = [list(column) for column in zip(*lookups, strict=True)]
        rows = fetch_all(self.db, self._read_sql(), columns)
        if len(rows) != len(lookups):  # every lookup joins to exactly one row
            raise RuntimeError("the read statement did not return one row per read")
        return list(rows)

    def _value_of_read_row(self, tenant_id: str, key: str, row: Sequence[Any] | None,
                           check: Callable[[Sequence[Any] | None], RequestContext]
                           ) -> tuple[RequestContext, SecretValue | None]:
        """The request's context and the opened value of ``_read_sql``'s row; the value is
        None when the views do not hold the stream's head yet."""
        assert row is not None  # every lookup yields one row
        ctx = check(row[:6])
        head, views_version, shredded_at = row[6:9]
        if head is None:
            raise TenantNotFound("no such tenant")
        if views_version is None or int(views_version) < int(head):
            return ctx, None
        if shredded_at is not None:
            raise TenantShredded("the tenant was shredded; its values are gone")
        keys = row[18:22]

        def data_key_of(dek_id: str) -> bytes:
            return self.keys.open_data_key(tenant_id, dek_id, *keys)

        return ctx, self._open_value(tenant_id, key, None, None, row[9:18], data_key_of)

    def _check_token(self, token_hash: str,
                     check: Callable[[Sequence[Any] | None], RequestContext]) -> RequestContext:
        return check(fetch_one(self.db, TOKEN_ROW, (token_hash,)))

    def _read_sql(self) -> str:
        if self._read_statement is None:
            table = self.events.recorder.events_table_name  # type: ignore[attr-defined]
            if not _IDENTIFIER.fullmatch(table):
                raise ValueError(f"unexpected events table name {table!r}")
            # One row per (tenant, token, key) asked, in order: LEFT JOINs on unique keys.
            self._read_statement = (
                f"SELECT {', '.join('k.' + c for c in TOKEN_COLUMNS.split(', '))},"
                " h.head, t.version, t.shredded_at,"
                " c.version, c.deleted, v.version, v.state, v.metadata, v.created_at,"
                " v.created_by, v.ciphertext, v.dek_id,"
                " d.wrapped, tk.key_version, tk.wrapped, tk.master_key_id"
                " FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::text[])"
                " WITH ORDINALITY AS r(tenant_uuid, tenant_id, token_hash, key, n)"
                " CROSS JOIN LATERAL (SELECT MAX(originator_version) AS head"
                f" FROM {table} WHERE originator_id = r.tenant_uuid) h"
                " LEFT JOIN tokens k ON k.token_hash = r.token_hash"
                " LEFT JOIN tenants t ON t.tenant_id = r.tenant_id"
                " LEFT JOIN current_secrets c ON c.tenant_id = r.tenant_id AND c.key = r.key"
                " LEFT JOIN secret_versions v ON v.tenant_id = c.tenant_id AND v.key = c.key"
                " AND v.version = c.version"
                " LEFT JOIN data_keys d ON d.dek_id = v.dek_id AND d.tenant_id = v.tenant_id"
                " LEFT JOIN tenant_keys tk ON tk.tenant_id = d.tenant_id"
                " AND tk.key_version = d.key_version"
                " ORDER BY r.n"
            )
        return self._read_statement

    @staticmethod
    def _read_record(tenant_id: str, value: SecretValue, ctx: RequestContext) -> ReadRecord:
        return ReadRecord(tenant_id, value.key, value.version, ctx.actor, ctx.request_id)

    def _record_read(self, tenant_id: str, value: SecretValue, ctx: RequestContext) -> None:
        try:
            self.writer.record_read(self._read_record(tenant_id, value, ctx))
        except Exception:
            raise Unavailable(READ_NOT_RECORDED) from None

    def list_versions(self, name: str, key: str) -> tuple[int, list[VersionInfo]]:
        rules.check_secret_key(key)
        tenant_id, _ = self._tenant_row(name)
        rows = fetch_all(
            self.db,
            "SELECT version, created_at, created_by, state FROM secret_versions"
            " WHERE tenant_id = %s AND key = %s ORDER BY version",
            (tenant_id, key),
        )
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
        with self.db.read() as cur:
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
        self._await_views()  # value reads are recorded outside the tenant's stream
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
        rows = fetch_all(
            self.db,
            "SELECT position, at, action, key, version, actor, request_id FROM audit_trail"
            f" WHERE {' AND '.join(clauses)} ORDER BY position LIMIT %s",
            (*params, limit + 1),
        )
        items = [AuditItem(int(p), str(a), str(ac), k, v, str(who), str(r))
                 for p, a, ac, k, v, who, r in rows[:limit]]
        following = self.cursors.encode(str(items[-1].position), scope) if len(
            rows) > limit else None
        return Page(items, following)

    def list_tenants(self) -> list[tuple[str, str, str | None]]:
        self._await_views()
        with self.db.read() as cur:
            cur.execute("SELECT tenant, created_at, shredded_at FROM tenants ORDER BY tenant")
            return [(str(t), str(c), s) for t, c, s in cur.fetchall()]

    def verify(self, name: str) -> ChainCheck:
        rules.check_tenant_name(name)
        check = verify_tenant(self.events, tenant_id_for(name))
        if check.events == 0:
            raise TenantNotFound("no such tenant")
        return check


def check_prefix(prefix: str) -> None:
    if prefix and not all(c.isascii() and (c.isalnum() or c in "._/-") for c in prefix):
        raise InvalidRequest("a prefix uses the characters of secret keys: [A-Za-z0-9._/-]")


def check_limit(limit: int) -> None:
    if not 1 <= limit <= 1000:
        raise InvalidRequest("limit is 1-1000")
