"""When a destroy or a shred answers, no copy of a deleted key can be read from the
database files by any path: on SQLite the raw bytes of every file in the data directory
(databases, WAL, shared memory), on PostgreSQL the raw heap pages of the key tables
(``pageinspect``), dead tuples included. A positive control shows each search sees the
wrapped keys before they are deleted."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import psycopg

from secrets_ledger.core.settings import Settings
from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.domain.tenant import tenant_id_for
from secrets_ledger.runtime import LedgerRuntime
from tests.conftest import PG_URL
from tests.support import Blocking

KEY_TABLES = ("data_keys", "tenant_keys")
PAGE = 8192


def pg_pages(settings: Settings) -> Iterator[bytes]:
    """Every raw page of the key tables, live and dead tuples alike."""
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        # (Another test may create it at the same moment.)
        with contextlib.suppress(psycopg.errors.UniqueViolation):
            conn.execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        for table in KEY_TABLES:
            relation = f"{settings.database_schema}.{table}"
            row = conn.execute("SELECT pg_relation_size(%s::regclass)", (relation,)).fetchone()
            assert row is not None
            for block in range(int(row[0]) // PAGE):
                page = conn.execute("SELECT get_raw_page(%s, %s)", (relation, block)).fetchone()
                assert page is not None
                yield bytes(page[0])


def raw_store(settings: Settings) -> list[bytes]:
    if settings.database_url is not None:
        return list(pg_pages(settings))
    return [path.read_bytes() for path in settings.data_dir.iterdir() if path.is_file()]


def readable(settings: Settings, wrapped: list[str]) -> list[str]:
    """The wrapped keys whose text any raw byte of the store still holds. (A key table
    that a rewrite left empty has no page at all.)"""
    blobs = raw_store(settings)
    return [text for text in wrapped if any(text.encode() in blob for blob in blobs)]


def wrapped_keys(runtime: LedgerRuntime, tenant: str, *, data_keys_only: bool = False
                 ) -> list[str]:
    tenant_id = str(tenant_id_for(tenant))
    with runtime.storage.db.read() as cur:
        cur.execute("SELECT wrapped FROM data_keys WHERE tenant_id = %s", (tenant_id,))
        found = [str(row[0]) for row in cur.fetchall()]
        if not data_keys_only:
            cur.execute("SELECT wrapped FROM tenant_keys WHERE tenant_id = %s", (tenant_id,))
            found += [str(row[0]) for row in cur.fetchall()]
    return found


def write_versions(ledger: Blocking, tenant: str, ctx: RequestContext, key: str,
                   count: int) -> None:
    for number in range(count):
        ledger.put_secret(tenant, key, f"value {number}", None, None, ctx)


def test_a_destroyed_versions_data_keys_are_in_no_stored_byte(
        runtime: LedgerRuntime, ledger: Blocking, tenant: str, ctx: RequestContext,
        settings: Settings) -> None:
    write_versions(ledger, tenant, ctx, "doomed", 3)
    doomed = wrapped_keys(runtime, tenant, data_keys_only=True)
    assert len(doomed) == 3
    write_versions(ledger, tenant, ctx, "kept", 2)
    assert readable(settings, doomed) == doomed  # the search sees them
    ledger.destroy_versions(tenant, "doomed", [1, 2, 3], ctx)
    assert readable(settings, doomed) == []
    assert ledger.get_secret(tenant, "kept", ctx).value == "value 1"


def test_a_shredded_tenants_keys_are_in_no_stored_byte(
        runtime: LedgerRuntime, ledger: Blocking, tenant: str, ctx: RequestContext,
        settings: Settings) -> None:
    write_versions(ledger, tenant, ctx, "a", 2)
    ledger.rotate_tenant_key(tenant, ctx)
    write_versions(ledger, tenant, ctx, "b", 2)
    keys = wrapped_keys(runtime, tenant)
    assert len(keys) == 6  # four data keys, two tenant keys
    assert readable(settings, keys) == keys
    ledger.shred_tenant(tenant, ctx)
    assert readable(settings, keys) == []

