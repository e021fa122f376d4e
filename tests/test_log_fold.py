"""Replay checks the transparency logs in its own pass (domain/log_fold.py), on both
backends: the logs it recomputes from the records equal the stored ones, chunk digest for
chunk digest; the store frames its rows for those digests exactly as the fold does; every
damage the record-by-record check finds, the fold's comparison finds too, and the verdict
names it the same way; writes that commit after the fold's snapshot are not counted."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from secrets_ledger.adapters.sql.tlog import append_rows
from secrets_ledger.core.principals import Principal
from secrets_ledger.core.replay_logs import ReplayedLogs
from secrets_ledger.domain.log_fold import row_frame
from secrets_ledger.domain.merkle_log import LogHead
from secrets_ledger.domain.tenant import tenant_id_for
from secrets_ledger.projections.replay import replay
from secrets_ledger.projections.views import ALL_VIEWS
from secrets_ledger.runtime import LedgerRuntime
from tests.support import Blocking, run
from tests.test_concurrency import request
from tests.test_transparency_log import acme_with_history, on_log_tables

CHUNK = 4  # small chunks: every log here spans several, and ends inside one
OPERATOR = Principal.operator()


def replayed_fold(runtime: LedgerRuntime) -> ReplayedLogs:
    check = run(runtime.ledger.history.replay_check(OPERATOR, CHUNK))
    storage = runtime.storage
    replay(storage.view_store, storage.event_source, ALL_VIEWS, check=check)
    return check


def two_tenants(ledger: Blocking) -> None:
    acme_with_history(ledger)  # writes and reads: tenant events and read records
    ledger.open_tenant("globex", request())
    ledger.put_secret("globex", "g", "1", None, None, request())


def test_the_logs_replay_recomputes_equal_the_stored_ones(ledger: Blocking,
                                                          runtime: LedgerRuntime) -> None:
    two_tenants(ledger)
    runtime.ledger.checkpointer.sign_round()
    check = replayed_fold(runtime)
    assert check.differences() == []
    rows, logs = runtime.storage.log_rows, check.fold.logs
    for name in ("acme", "globex"):
        tenant_id = str(tenant_id_for(name))
        assert (logs[tenant_id].head.size, logs[tenant_id].head.root) == rows.size(tenant_id)
    verdict = run(runtime.ledger.history.replay_verdict(OPERATOR, check))
    assert verdict.ok and len(verdict.heads) == 2 and verdict.leaves == check.fold.leaves


def test_the_store_frames_its_rows_for_the_digests_as_the_fold_does(
        runtime: LedgerRuntime) -> None:
    tenant_id, head, rows = "00000000-0000-4000-8000-0000000000f1", LogHead(), []
    for index in range(11):
        record_id = "" if index % 3 else f"record-{'é' * index}"  # lengths vary, not ASCII
        rows.append((tenant_id, index, record_id, index + 1,
                     head.append(b"E" + index.to_bytes(32, "big"))))
    with runtime.storage.log_rows.db.transaction() as cur:  # type: ignore[attr-defined]
        append_rows(cur, rows)
    for size in (11, 8, 6):  # the log's end, a chunk's end, inside a chunk
        expected = []
        for start in range(0, size, CHUNK):
            digest = hashlib.sha256()
            for _, _, record_id, version, hashes in rows[start:min(start + CHUNK, size)]:
                digest.update(row_frame(record_id, version, hashes))
            expected.append(digest.digest())
        stored = runtime.storage.log_rows.chunk_digests({tenant_id: size}, CHUNK)
        assert stored == {tenant_id: expected}


Damage = Callable[[str, int], tuple[str, tuple[object, ...]]]
DAMAGES: dict[str, tuple[Damage, str]] = {
    "an edited leaf": (lambda tenant, size: (
        "UPDATE log_leaves SET hashes = %s WHERE tenant_id = %s AND idx = 3",
        (b"\x00" * 32, tenant)), "leaf 3 of tenant"),
    "an edited record id": (lambda tenant, size: (
        "UPDATE log_leaves SET record_id = 'x' WHERE tenant_id = %s AND idx = 0",
        (tenant,)), "leaf 0 of tenant"),
    "a deleted leaf inside the log": (lambda tenant, size: (
        "DELETE FROM log_leaves WHERE tenant_id = %s AND idx = 5", (tenant,)),
        "leaf 5 of tenant"),
    "a deleted last leaf": (lambda tenant, size: (
        "DELETE FROM log_leaves WHERE tenant_id = %s AND idx = %s", (tenant, size - 1)),
        "is missing"),
    "a leaf beyond the records": (lambda tenant, size: (
        "INSERT INTO log_leaves (tenant_id, idx, record_id, record_version, hashes)"
        " VALUES (%s, %s, 'x', 1, %s)", (tenant, size, b"\x00" * 32)), "beyond its records"),
    "a checkpoint of another root": (lambda tenant, size: (
        "UPDATE log_checkpoints SET root = %s WHERE tenant_id = %s", (b"\x07" * 32, tenant)),
        "signed checkpoint"),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_log_is_found_by_the_fold_and_named_by_the_verdict(
        damage: str, ledger: Blocking, runtime: LedgerRuntime) -> None:
    tenant_id = acme_with_history(ledger)
    runtime.ledger.checkpointer.sign_round()
    size = runtime.storage.log_rows.log_size(tenant_id)
    assert size > 2 * CHUNK
    statement, reason = DAMAGES[damage]
    on_log_tables(runtime.settings, statement(tenant_id, size))
    check = replayed_fold(runtime)
    assert check.differences() != []  # found by the fold's digests, not by the fallback
    verdict = run(runtime.ledger.history.replay_verdict(OPERATOR, check))
    assert not verdict.ok
    assert reason in str(verdict.reason)


def test_writes_after_the_snapshot_are_neither_folded_nor_flagged(
        ledger: Blocking, runtime: LedgerRuntime) -> None:
    two_tenants(ledger)
    check = run(runtime.ledger.history.replay_check(OPERATOR, CHUNK))
    ledger.put_secret("acme", "later", "v", None, None, request())  # after the snapshot
    ledger.get_secret("acme", "later", request())
    storage = runtime.storage
    replay(storage.view_store, storage.event_source, ALL_VIEWS, check=check)
    assert check.differences() == []
    assert check.fold.leaves == sum(check.fold.snapshot.sizes.values())
    assert run(runtime.ledger.history.replay_verdict(OPERATOR, check)).ok
