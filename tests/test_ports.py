"""The storage ports' contracts, one suite per port, each run against the SQLite adapter
and the PostgreSQL adapter (a real server): what the core and the projections rely on
from whichever backend holds the ledger."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from secrets_ledger.adapters.backend import Storage
from secrets_ledger.adapters.sql.processes import SqlProcesses
from secrets_ledger.core.ports import (
    AuditFilter,
    ConcurrentAppend,
    MasterKeySwitch,
    TenantKeyRow,
    ValueLookup,
    WrappedDataKey,
)
from secrets_ledger.core.principals import TokenRecord, hash_token
from secrets_ledger.domain.changes import RequestContext, SealedValue, SetValue
from secrets_ledger.domain.errors import InvalidRequest, Unavailable
from secrets_ledger.domain.reads import ReadRecord, ValueReads
from secrets_ledger.domain.tenant import Tenant, tenant_id_for
from secrets_ledger.domain.times import utc_now
from secrets_ledger.projections.ports import Column
from secrets_ledger.runtime import LedgerRuntime
from tests.support import blocking

CTX = RequestContext("tok_ports", "req-ports")


def seal(key: str, version: int, key_version: int) -> SealedValue:
    return SealedValue(f"sealed-{key}-{version}", str(uuid.uuid4()))


def opened(name: str, writes: int = 0) -> Tenant:
    tenant = Tenant.open(name, CTX, utc_now())
    for n in range(writes):
        tenant.write([SetValue(f"k{n}")], seal, CTX, utc_now())
    return tenant


def data_key(tenant: Tenant, n: int = 0) -> WrappedDataKey:
    return WrappedDataKey(f"dek-{tenant.name}-{n}", str(tenant.id), 1, f"wrapped-{n}", b"")


@pytest.fixture
def storage(runtime: LedgerRuntime) -> Storage:
    return runtime.storage


# ---- TenantStreams -------------------------------------------------------------------------


def no_signing_keys(token_id: str, wrapped: str, key_id: str) -> str:
    return "rewrapped signing key"


def test_streams_store_aggregates_and_reads_in_order(storage: Storage) -> None:
    streams = storage.streams
    assert streams.load(tenant_id_for("fresh")) is None
    assert streams.head(tenant_id_for("fresh")) is None
    start = streams.max_position()
    acme = opened("acme", writes=2)
    read = ValueReads.record([ReadRecord(str(acme.id), "k0", 1, "tok", "req")], utc_now())
    streams.save([acme], [read], [data_key(acme)])
    assert streams.head(acme.id) == 3
    stored = streams.stored_after(start, 10)
    assert [(s.stream_id, s.version) for s in stored] == [
        (acme.id, 1), (acme.id, 2), (acme.id, 3), (read.id, 1)]
    assert [s.position for s in stored] == sorted(s.position for s in stored)
    assert streams.max_position() == stored[-1].position
    assert [s.version for s in streams.stream(acme.id)] == [1, 2, 3]
    assert [type(s.decode()) for s in streams.stream(acme.id)] == [
        Tenant.Opened, Tenant.SecretVersionsWritten, Tenant.SecretVersionsWritten]
    loaded = streams.load(acme.id)
    assert loaded is not None
    assert (loaded.version, loaded.head) == (3, acme.head)


def test_a_concurrent_append_stores_nothing_and_says_so(storage: Storage) -> None:
    streams = storage.streams
    streams.save([opened("race")], [], [])
    first, second = streams.load(tenant_id_for("race")), streams.load(tenant_id_for("race"))
    assert first is not None and second is not None
    first.write([SetValue("a")], seal, CTX, utc_now())
    second.write([SetValue("b")], seal, CTX, utc_now())
    streams.save([first], [], [])
    with pytest.raises(ConcurrentAppend):
        streams.save([second], [], [data_key(second, 9)])
    assert streams.head(tenant_id_for("race")) == 2
    # What another instance appended after a version, as a cached aggregate catches up.
    assert [type(e) for e in streams.newer_events(opened("race"))] == [
        Tenant.SecretVersionsWritten]


def test_data_keys_saved_with_events_are_in_the_key_store(storage: Storage) -> None:
    acme = opened("keyed", writes=1)
    in_force = in_force_key(storage)
    storage.key_rows.insert_tenant_key(str(acme.id), 1, {in_force: "tk"}, "now")
    storage.streams.save([acme], [], [data_key(acme)])
    assert storage.key_rows.data_key(str(acme.id), "dek-keyed-0") == (
        "wrapped-0", TenantKeyRow(str(acme.id), 1, "tk", in_force))


# ---- KeyRows -------------------------------------------------------------------------------


def in_force_key(storage: Storage) -> str:
    in_force = storage.key_rows.master_key_in_force()
    assert in_force is not None  # opening the storage put the configured key in force
    return in_force


def test_key_rows_keep_the_first_tenant_key_and_shred_only_one_tenant(storage: Storage) -> None:
    rows, m1 = storage.key_rows, in_force_key(storage)
    for tenant in ("t1", "t2"):
        rows.insert_tenant_key(tenant, 1, {m1: f"first-{tenant}"}, "now")
        rows.insert_tenant_key(tenant, 1, {m1: "second"}, "now")  # a retry
    assert rows.tenant_key("t1", 1) == TenantKeyRow("t1", 1, "first-t1", m1)
    assert rows.tenant_key("t1", 2) is None
    with storage.db.transaction() as cur:
        cur.executemany("INSERT INTO data_keys (dek_id, tenant_id, key_version, wrapped)"
                        " VALUES (%s, %s, 1, 'w')", [("a", "t1"), ("b", "t1"), ("c", "t2")])
    rows.destroy_data_keys("t1", ["a"])
    assert rows.data_key("t1", "a") is None
    assert rows.data_key("t1", "b") is not None
    assert rows.data_key("t2", "a") is None  # a key of another tenant is never found
    rows.shred_tenant("t1")
    assert (rows.data_key("t1", "b"), rows.tenant_key("t1", 1)) == (None, None)
    assert rows.data_key("t2", "c") is not None
    assert rows.tenant_key("t2", 1) is not None


def test_a_tenant_key_is_stored_under_the_master_key_in_force_only(storage: Storage) -> None:
    rows, old = storage.key_rows, in_force_key(storage)
    rows.insert_tenant_key("t1", 1, {old: "under-old", "other": "under-other"}, "now")
    assert rows.tenant_key("t1", 1) == TenantKeyRow("t1", 1, "under-old", old)


def test_a_tenant_key_is_refused_by_a_process_without_the_master_key_in_force(
        storage: Storage) -> None:
    with pytest.raises(Unavailable):
        storage.key_rows.insert_tenant_key("t1", 1, {"not-in-force": "w"}, "now")
    assert storage.key_rows.tenant_key("t1", 1) is None


def test_switching_the_master_key_rewraps_every_tenant_key_and_retires_the_old_key(
        storage: Storage) -> None:
    rows, old = storage.key_rows, in_force_key(storage)
    rows.insert_tenant_key("t1", 1, {old: "under-old"}, "now")
    seen: list[TenantKeyRow] = []

    def rewrap(row: TenantKeyRow) -> str:
        seen.append(row)
        return f"rewrapped-{row.tenant_id}"

    assert rows.switch_master_key("new", rewrap, no_signing_keys) == MasterKeySwitch(1, "new", old)
    assert seen == [TenantKeyRow("t1", 1, "under-old", old)]
    assert rows.tenant_key("t1", 1) == TenantKeyRow("t1", 1, "rewrapped-t1", "new")
    assert rows.master_key_in_force() == "new"
    assert rows.switch_master_key("new", rewrap, no_signing_keys) == MasterKeySwitch(0, "new", None)
    rows.insert_tenant_key("t2", 1, {old: "under-old", "new": "under-new"}, "now")
    assert rows.tenant_key("t2", 1) == TenantKeyRow("t2", 1, "under-new", "new")


def test_a_retired_master_key_is_never_put_in_force_again(storage: Storage) -> None:
    rows, old = storage.key_rows, in_force_key(storage)
    rows.switch_master_key("new", lambda row: "rewrapped", no_signing_keys)
    with pytest.raises(InvalidRequest, match="retired"):
        rows.switch_master_key(old, lambda row: "back", no_signing_keys)
    assert rows.master_key_in_force() == "new"


def test_the_master_key_is_not_switched_while_a_live_server_lacks_the_new_key(
        storage: Storage) -> None:
    rows, old = storage.key_rows, in_force_key(storage)
    rows.insert_tenant_key("t1", 1, {old: "under-old"}, "now")
    server = SqlProcesses(storage.db)
    server.beat([old])
    with pytest.raises(Unavailable, match="1 running server"):
        rows.switch_master_key("new", lambda row: "rewrapped", no_signing_keys)
    assert (rows.master_key_in_force(), rows.tenant_key("t1", 1)) == (
        old, TenantKeyRow("t1", 1, "under-old", old))
    server.beat([old, "new"])
    assert rows.switch_master_key("new", lambda row: "rewrapped", no_signing_keys).retired == old
    server.leave()


# ---- TokenRows -----------------------------------------------------------------------------


def test_token_rows_are_found_by_hash_and_revoked_once(storage: Storage) -> None:
    rows = storage.token_rows
    assert rows.by_hashes([]) == {}
    assert not rows.has_live_admin()
    assert rows.insert(("tok_a", hash_token("a"), "writer", "acme", None, None), "", "now",
                       "cli")
    assert rows.insert(("tok_b", hash_token("b"), "admin", None, "2999-01-01T00:00:00Z", None),
                       "", "now", "cli")
    assert not rows.insert(("tok_c", hash_token("a"), "admin", None, None, None), "", "now",
                           "cli")  # a token with that hash exists already
    found = rows.by_hashes([hash_token("a"), hash_token("b"), hash_token("nobody")])
    assert found == {
        hash_token("a"): ("tok_a", hash_token("a"), "writer", "acme", None, None),
        hash_token("b"): ("tok_b", hash_token("b"), "admin", None, "2999-01-01T00:00:00Z",
                          None)}
    assert rows.by_id("tok_b") == found[hash_token("b")] and rows.by_id("tok_c") is None
    assert rows.has_live_admin()
    assert rows.revoke(["tok_a", "tok_nobody"], "then", "tok_x") == ["tok_a"]
    assert rows.revoke(["tok_a"], "later", "tok_y") == []  # revoked already
    assert rows.by_hashes([hash_token("a")])[hash_token("a")][5] == "then"


def test_token_rows_list_without_hashes_and_find_live_bootstrap_tokens(
        storage: Storage) -> None:
    rows = storage.token_rows
    for token_id, tenant, at in (("tok_boot1", None, "t1"), ("tok_boot2", None, "t2"),
                                 ("tok_a", "acme", "t3"), ("tok_b", "other", "t4")):
        rows.insert((token_id, hash_token(token_id), "admin" if tenant is None else "reader",
                     tenant, None, None), "why", at, "serve")
    rows.revoke(["tok_boot1"], "t5", "serve")
    assert rows.live_bootstrap_ids() == ["tok_boot2"]
    assert rows.listing("acme") == [
        TokenRecord("tok_a", "reader", "acme", "why", "t3", "serve", None, None, None)]
    listed = rows.listing(None)
    assert [record.token_id for record in listed] == ["tok_boot1", "tok_boot2", "tok_a",
                                                      "tok_b"]
    assert (listed[0].revoked_at, listed[0].revoked_by) == ("t5", "serve")
    assert hash_token("tok_a") not in repr(listed)


# ---- ViewQueries and ValueLookups (through the core's writes and the projector) ------------


@pytest.fixture
def projected(runtime: LedgerRuntime) -> str:
    ledger = blocking(runtime)
    ledger.open_tenant("acme", CTX)
    for key in ("b", "B", "a/1", "a/2"):
        ledger.put_secret("acme", key, key, {"m": key}, None, CTX)
    ledger.put_secret("acme", "b", "b2", None, None, CTX)
    ledger.delete_secret("acme", "a/2", None, CTX)
    ledger.get_secret("acme", "b", CTX)
    assert runtime.projector.wait_for(runtime.storage.streams.max_position(), 30)
    return str(tenant_id_for("acme"))


def test_view_queries_read_what_was_projected(storage: Storage, projected: str) -> None:
    views = storage.views
    assert views.tenant_state(projected) == (None, 7, None)
    assert views.tenant_state("nobody") is None
    assert [name for name, _, shredded in views.tenants()] == ["acme"]
    assert views.key_state(projected, "b") == (2, False)
    assert views.key_state(projected, "a/2") == (1, True)
    assert views.key_state(projected, "absent") is None
    ciphertext, dek_id, metadata = views.version_row(projected, "b", 1) or (None, None, None)
    assert (ciphertext is not None, dek_id is not None, metadata) == (True, True, '{"m": "b"}')
    assert set(views.data_key_ids(projected, "b")) == {1, 2}
    assert views.current_versions(projected) == {"B": 1, "a/1": 1, "b": 2}
    assert [v for v, _, _, _ in views.versions(projected, "b")] == [1, 2]
    # Byte order on both backends: upper case before lower case.
    assert [k for k, _, _ in views.keys_page(projected, "", "", 10, None)] == ["B", "a/1", "b"]
    assert [k for k, _, _ in views.keys_page(projected, "a", "", 10, None)] == ["a/1"]
    assert [k for k, _, _ in views.keys_page(projected, "", "B", 1, None)] == ["a/1"]
    reads = views.audit_page(projected, AuditFilter(action="read"), -1, 10)
    assert [(r.action, r.key, r.version, r.actor) for r in reads] == [
        ("read", "b", 2, "tok_ports")]
    everything = views.audit_page(projected, AuditFilter(), -1, 100)
    assert [r.position for r in everything] == sorted(r.position for r in everything)
    assert views.audit_page(projected, AuditFilter(), everything[2].position, 2) == (
        everything[3:5])


def test_value_lookups_answer_one_row_per_lookup_in_order(storage: Storage,
                                                          projected: str) -> None:
    digest = hash_token("unknown")
    acme, nobody = tenant_id_for("acme"), tenant_id_for("nobody")
    lookups = [ValueLookup(acme, None, "b", None, None),
               ValueLookup(acme, digest, "b", 1, None),
               ValueLookup(nobody, None, "b", None, None),
               ValueLookup(acme, None, "absent", None, None),
               ValueLookup(acme, None, "a/2", None, None),
               ValueLookup(acme, None, "b", None, "2000-01-01T00:00:00.000000Z"),
               ValueLookup(acme, None, "b", None, None)]
    rows = storage.value_lookups.value_rows(lookups)
    assert len(rows) == len(lookups)
    current, first, unknown, absent, deleted, before, again = rows
    assert (current.head, current.views_version, current.version) == (7, 7, 2)
    assert current.token == (None,) * 6
    assert current.data_key_wrapped is not None and current.tenant_key_wrapped is not None
    assert (first.version, first.token_hash) == (1, None)  # no token has that hash
    assert (unknown.head, unknown.views_version, unknown.version) == (None, None, None)
    assert (absent.head, absent.current_version, absent.version) == (7, None, None)
    assert (deleted.current_version, bool(deleted.deleted), deleted.state) == (
        1, True, "deleted")
    assert (before.at_version, before.at_live) == (None, None)
    assert again == current


# ---- ViewStore (the projections' port) -----------------------------------------------------

COLUMNS: list[Column] = [("k", "text"), ("n", "bigint")]


def test_view_writers_append_merge_update_and_track_positions(storage: Storage) -> None:
    store = storage.view_store
    with store.transaction() as tx:
        tx.execute("CREATE TABLE scratch (k TEXT PRIMARY KEY, n BIGINT NOT NULL)")
        tx.append("scratch", COLUMNS, [("a", 1), ("b", 2)])
        tx.merge("scratch", COLUMNS, [("b", 20), ("c", 3)],
                 "(k) DO UPDATE SET n = excluded.n")
        tx.update("scratch", assign=[("n", "bigint")], keys=[("k", "text")],
                  rows=[(100, "a"), (300, "c")], where="n < 10")
        assert tx.lock_position("current") == 0
        tx.set_position("current", 42)
    with store.transaction() as tx:
        dumped = b"".join(bytes(chunk) for chunk in tx.rows_as_copy_text("scratch", "k"))
    assert dumped == b"a\t100\nb\t20\nc\t300\n"
    assert store.positions()["current"] == 42


def test_a_cloned_table_is_empty_and_swaps_in_under_the_old_name(storage: Storage) -> None:
    store = storage.view_store
    with store.transaction() as tx:
        tx.execute("CREATE TABLE scratch (k TEXT PRIMARY KEY, n BIGINT NOT NULL)")
        tx.append("scratch", COLUMNS, [("old", 1)])
        clone = store.clone_table(tx, "scratch", "scratch__rebuild")
        clone.build_indexes(tx)
        tx.append("scratch__rebuild", COLUMNS, [("new", 2)])
        clone.swap(tx)
    with store.transaction() as tx:
        rows: list[Any] = [bytes(c) for c in tx.rows_as_copy_text("scratch", "k")]
        assert rows == [b"new\t2\n"]
        with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
            tx.append("scratch", COLUMNS, [("new", 3)])  # the key came back with the swap
