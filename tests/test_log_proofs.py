"""The proofs of a stored log, on both backends: every one verifies against the root the
log's leaves give, whether its upper subtrees were read from the store or from the
process's cache of them, and a log's rows stay readable the fast way once it is big."""

from __future__ import annotations

import random

import pytest

from secrets_ledger.adapters.sql.tlog import append_rows
from secrets_ledger.core import log_proofs
from secrets_ledger.core.log_proofs import CACHED_WIDTH, LogProofs
from secrets_ledger.domain.merkle_log import LogHead
from secrets_ledger.runtime import LedgerRuntime
from secrets_ledger.verifier import leaf_hash, root_hash, verify_consistency, verify_inclusion

TENANT = "00000000-0000-4000-8000-00000000cafe"
LEAVES = 5 * CACHED_WIDTH + 3  # several cached subtrees, and a right edge cut below them


def stored_log(runtime: LedgerRuntime) -> list[bytes]:
    head, rows, leaves = LogHead(), [], []
    for index in range(LEAVES):
        leaves.append(b"E" + index.to_bytes(32, "big"))
        rows.append((TENANT, index, "", index + 1, head.append(leaves[-1])))
    with runtime.storage.log_rows.db.transaction() as cur:  # type: ignore[attr-defined]
        append_rows(cur, rows)
    return [leaf_hash(leaf) for leaf in leaves]


def test_every_proof_verifies_cold_and_from_the_cached_subtrees(
        runtime: LedgerRuntime) -> None:
    hashes = stored_log(runtime)
    proofs, rng = LogProofs(runtime.storage.log_rows), random.Random(16)
    asked = [(rng.randrange(1, LEAVES + 1), rng.random()) for _ in range(150)]
    first = []
    for size, at in asked * 2:  # the second round finds the upper subtrees cached
        index, old = int(at * size), max(1, int(at * size))
        root = root_hash(hashes[:size])
        inclusion = proofs.inclusion(TENANT, index, size)
        verify_inclusion(index, size, hashes[index], inclusion, root)
        consistency = proofs.consistency(TENANT, old, size)
        verify_consistency(old, size, consistency, root_hash(hashes[:old]), root)
        assert proofs.root(TENANT, size) == root
        first.append((inclusion, consistency))
    assert first[:len(asked)] == first[len(asked):]


def test_proofs_verify_across_the_cache_being_emptied_when_full(
        runtime: LedgerRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    hashes = stored_log(runtime)
    monkeypatch.setattr(log_proofs, "SUBTREES_CACHED", 3)
    proofs, root = LogProofs(runtime.storage.log_rows), root_hash(hashes)
    for index in range(0, LEAVES, 7):
        verify_inclusion(index, LEAVES, hashes[index], proofs.inclusion(TENANT, index, LEAVES),
                         root)
        assert proofs._cached <= 3 + 8  # emptied once full (a proof adds a few at most)


def test_the_log_size_rows_and_tenants_are_read_by_the_primary_key(
        runtime: LedgerRuntime) -> None:
    stored_log(runtime)
    log_rows = runtime.storage.log_rows
    assert log_rows.log_tenants() == [TENANT]
    assert log_rows.log_size(TENANT) == LEAVES
    assert log_rows.log_size("00000000-0000-4000-8000-000000000000") == 0
    assert sorted(log_rows.rows(TENANT, [0, 7, LEAVES - 1, LEAVES])) == [0, 7, LEAVES - 1]
    assert log_rows.rows(TENANT, []) == {}
