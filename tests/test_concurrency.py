"""No overwrite races, read-your-writes and idempotency under concurrency (SPEC 3 and 5).

Every test runs on SQLite and on PostgreSQL. "Two runtimes" are two ``LedgerRuntime``
instances on the same storage: two processes' worth of state (caches, locks, projector
threads), so that a conflict on the tenant aggregate's version between them has to be
retried by the ledger itself.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import pytest

from secrets_ledger.core.ports import AuditFilter, AuditRow
from secrets_ledger.core.secrets import WriteResult
from secrets_ledger.core.settings import Settings
from secrets_ledger.domain.changes import Precondition, RequestContext
from secrets_ledger.domain.errors import IdempotencyKeyReused, SecretNotFound, VersionConflict
from secrets_ledger.runtime import LedgerRuntime
from tests.support import Blocking

THREADS = 16
WRITES_PER_THREAD = 4
CAS_ATTEMPTS_PER_THREAD = 4


def request(actor: str = "tok_test", **extra: str) -> RequestContext:
    return RequestContext(actor=actor, request_id=f"req-{uuid.uuid4().hex[:12]}", **extra)


def run_together(count: int, work: Callable[[int], None]) -> None:
    """Runs ``work(i)`` in ``count`` threads released at once; re-raises the first error."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def body(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            work(index)
        except BaseException as error:  # reported to the test thread below
            errors.append(error)

    threads = [threading.Thread(target=body, args=(i,), name=f"worker-{i}")
               for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a worker thread hung"
    if errors:
        raise errors[0]


def whole_audit(ledger: Blocking, tenant: str, where: AuditFilter | None = None) -> list[AuditRow]:
    items: list[AuditRow] = []
    cursor: str | None = None
    while True:
        page = ledger.audit(tenant, where or AuditFilter(), limit=1000, cursor=cursor)
        items.extend(page.items)
        if page.next_cursor is None:
            return items
        cursor = page.next_cursor


def current_version(ledger: Blocking, tenant: str, key: str) -> int:
    try:
        return ledger.list_versions(tenant, key)[0]
    except SecretNotFound:
        return 0


@pytest.fixture
def second_runtime(settings: Settings, runtime: LedgerRuntime) -> Iterator[LedgerRuntime]:
    """Another "process" on the storage of ``runtime`` (opened after it migrated)."""
    other = LedgerRuntime(settings)
    yield other
    other.close()


@pytest.fixture
def ledgers(ledger: Blocking, second_runtime: LedgerRuntime) -> tuple[Blocking, Blocking]:
    return ledger, Blocking(second_runtime.ledger)


# ---- writers of different keys ------------------------------------------------------------


def write_different_keys_concurrently(chooser: Sequence[Blocking], tenant: str) -> None:
    acknowledged: dict[str, list[WriteResult]] = {}
    lock = threading.Lock()

    def writer(index: int) -> None:
        ledger = chooser[index % len(chooser)]
        key = f"svc-{index}/password"
        results = []
        for round_ in range(WRITES_PER_THREAD):
            value = {"writer": index, "round": round_}
            results.append(ledger.put_secret(tenant, key, value, None, None,
                                             request(f"tok_w{index}")))
        with lock:
            acknowledged[key] = results

    run_together(THREADS, writer)

    reader = chooser[0]
    assert len(acknowledged) == THREADS
    for index in range(THREADS):
        key = f"svc-{index}/password"
        assert [r.version for r in acknowledged[key]] == list(range(1, WRITES_PER_THREAD + 1))
        current, versions = reader.list_versions(tenant, key)
        assert current == WRITES_PER_THREAD
        assert [v.version for v in versions] == list(range(1, WRITES_PER_THREAD + 1))
        assert {v.created_by for v in versions} == {f"tok_w{index}"}
        for round_ in range(WRITES_PER_THREAD):
            value = reader.get_secret(tenant, key, request(), version=round_ + 1).value
            assert value == {"writer": index, "round": round_}
    writes = [item for item in whole_audit(reader, tenant) if item.action == "write"]
    assert len(writes) == THREADS * WRITES_PER_THREAD
    assert {(item.key, item.version) for item in writes} == {
        (f"svc-{i}/password", v) for i in range(THREADS) for v in range(1, WRITES_PER_THREAD + 1)
    }
    listed = {item.key: item.version for item in reader.list_keys(tenant, limit=1000).items}
    assert listed == {f"svc-{i}/password": WRITES_PER_THREAD for i in range(THREADS)}


def test_concurrent_writers_of_different_keys_lose_no_update(ledger: Blocking,
                                                              tenant: str) -> None:
    write_different_keys_concurrently([ledger], tenant)


def test_concurrent_writers_of_different_keys_on_two_runtimes_lose_no_update(
        ledgers: tuple[Blocking, Blocking], tenant: str) -> None:
    write_different_keys_concurrently(ledgers, tenant)


# ---- check-and-set on one key -------------------------------------------------------------


@dataclass(frozen=True)
class Attempt:
    writer: int
    round: int
    expected: int
    written: int | None  # the version written, None when refused
    current: int | None  # current_version reported by a refusal


def check_and_set_concurrently(chooser: Sequence[Blocking], tenant: str) -> None:
    key = "shared/counter"
    attempts: list[Attempt] = []
    lock = threading.Lock()

    def writer(index: int) -> None:
        ledger = chooser[index % len(chooser)]
        for round_ in range(CAS_ATTEMPTS_PER_THREAD):
            expected = current_version(ledger, tenant, key)
            value = {"writer": index, "round": round_, "expected": expected}
            try:
                result = ledger.put_secret(tenant, key, value, None,
                                           Precondition.at_version(expected),
                                           request(f"tok_w{index}"))
            except VersionConflict as conflict:
                outcome = Attempt(index, round_, expected, None, conflict.extra["current_version"])
            else:
                outcome = Attempt(index, round_, expected, result.version, None)
            with lock:
                attempts.append(outcome)

    run_together(THREADS, writer)

    assert len(attempts) == THREADS * CAS_ATTEMPTS_PER_THREAD
    wins = [a for a in attempts if a.written is not None]
    losses = [a for a in attempts if a.written is None]
    # A winner wrote exactly the version after the one it saw; one winner per version.
    assert all(a.written == a.expected + 1 for a in wins)
    assert sorted(a.written for a in wins if a.written is not None) == list(
        range(1, len(wins) + 1))
    # A loser learnt the key's real (newer) version.
    for loss in losses:
        assert isinstance(loss.current, int)
        assert loss.current > loss.expected
    reader = chooser[0]
    current, versions = reader.list_versions(tenant, key)
    assert current == len(wins)
    assert [v.version for v in versions] == list(range(1, len(wins) + 1))
    # Each stored version holds its winner's value: no refused write was applied.
    for win in wins:
        assert win.written is not None
        stored = reader.get_secret(tenant, key, request(), version=win.written).value
        assert stored == {"writer": win.writer, "round": win.round, "expected": win.expected}
    writes = [i for i in whole_audit(reader, tenant, AuditFilter(key=key))
              if i.action == "write"]
    assert [i.version for i in writes] == list(range(1, len(wins) + 1))


def test_concurrent_check_and_set_on_one_key_has_one_winner_per_version(
        ledger: Blocking, tenant: str) -> None:
    check_and_set_concurrently([ledger], tenant)


def test_concurrent_check_and_set_on_two_runtimes_has_one_winner_per_version(
        ledgers: tuple[Blocking, Blocking], tenant: str) -> None:
    check_and_set_concurrently(ledgers, tenant)


# ---- read-your-writes ---------------------------------------------------------------------


def assert_reads_reflect_each_write(writer: Blocking, reader: Blocking, tenant: str) -> None:
    for i in range(50):
        key = f"ryw/key-{i % 7}"
        result = writer.put_secret(tenant, key, {"i": i}, {"iteration": str(i)}, None,
                                   request())
        secret = reader.get_secret(tenant, key, request())
        assert (secret.version, secret.value) == (result.version, {"i": i})
        assert secret.metadata == {"iteration": str(i)}
        listed = {k.key: k.version for k in reader.list_keys(tenant, prefix="ryw/",
                                                             limit=1000).items}
        assert listed[key] == result.version
        current, versions = reader.list_versions(tenant, key)
        assert current == result.version == versions[-1].version
        trail = whole_audit(reader, tenant, AuditFilter(key=key, action="write"))
        assert (trail[-1].key, trail[-1].version) == (key, result.version)


def test_reads_reflect_every_acknowledged_write(ledger: Blocking, tenant: str) -> None:
    assert_reads_reflect_each_write(ledger, ledger, tenant)


def test_reads_on_a_second_runtime_reflect_every_acknowledged_write(
        ledgers: tuple[Blocking, Blocking], tenant: str) -> None:
    writer, reader = ledgers
    assert_reads_reflect_each_write(writer, reader, tenant)


def test_a_deletion_is_reflected_at_once_on_a_second_runtime(
        ledgers: tuple[Blocking, Blocking], tenant: str) -> None:
    writer, reader = ledgers
    for i in range(10):
        key = f"gone-{i}"
        writer.put_secret(tenant, key, i, None, None, request())
        assert reader.get_secret(tenant, key, request()).value == i
        writer.delete_secret(tenant, key, None, request())
        assert key not in {k.key for k in reader.list_keys(tenant, limit=1000).items}
        assert [v.state for v in reader.list_versions(tenant, key)[1]] == ["deleted"]


def assert_rollbacks_find_the_version_just_written(writer: Blocking, roller: Blocking,
                                                   tenant: str) -> None:
    key = "rollback/key"
    for i in range(20):
        written = writer.put_secret(tenant, key, {"i": i}, {"i": str(i)}, None, request())
        # Rolling back to the version just acknowledged: a new version with its value.
        rolled = roller.rollback_secret(tenant, key, written.version, request())
        assert rolled.version == written.version + 1
        secret = roller.get_secret(tenant, key, request())
        assert (secret.version, secret.value, secret.metadata) == (
            rolled.version, {"i": i}, {"i": str(i)})


def test_a_rollback_right_after_a_write_finds_the_version_written(ledger: Blocking,
                                                                   tenant: str) -> None:
    assert_rollbacks_find_the_version_just_written(ledger, ledger, tenant)


def test_a_rollback_on_a_second_runtime_right_after_a_write_finds_the_version_written(
        ledgers: tuple[Blocking, Blocking], tenant: str) -> None:
    writer, roller = ledgers
    assert_rollbacks_find_the_version_just_written(writer, roller, tenant)


def test_every_value_read_while_two_runtimes_write_is_in_the_audit_trail(
        ledgers: tuple[Blocking, Blocking], tenant: str) -> None:
    """Reads are recorded in write batches; a batch retried after a conflict keeps them."""
    first, second = ledgers
    first.put_secret(tenant, "read/me", "value", None, None, request())
    served: list[str] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        role, ledger = [("read", first), ("write", first), ("write", second)][index % 3]
        for i in range(40):
            ctx = request(f"tok_{role}")
            if role == "read":
                assert first.get_secret(tenant, "read/me", ctx).value == "value"
                with lock:
                    served.append(ctx.request_id)
            else:
                ledger.put_secret(tenant, f"busy/{index}", i, None, None, ctx)

    run_together(12, worker)

    recorded = [item.request_id for item in
                whole_audit(first, tenant, AuditFilter(action="read", actor="tok_read"))]
    missing = set(served) - set(recorded)
    assert not missing, f"{len(missing)} of {len(served)} reads served without an audit record"
    assert sorted(recorded) == sorted(served)


# ---- idempotency --------------------------------------------------------------------------


def test_a_repeated_idempotent_request_returns_the_first_result_and_writes_once(
        ledger: Blocking, tenant: str) -> None:
    ctx = request(idempotency_key="k1", request_hash="h1")
    first = ledger.put_secret(tenant, "api/key", "v1", None, None, ctx)
    again = ledger.put_secret(tenant, "api/key", "v1", None, None,
                              request(idempotency_key="k1", request_hash="h1"))
    assert again == first
    assert ledger.list_versions(tenant, "api/key")[0] == 1
    writes = whole_audit(ledger, tenant, AuditFilter(action="write"))
    assert len(writes) == 1


def test_an_idempotency_key_reused_for_another_request_is_refused(
        ledger: Blocking, tenant: str) -> None:
    ledger.put_secret(tenant, "api/key", "v1", None, None,
                      request(idempotency_key="k1", request_hash="h1"))
    with pytest.raises(IdempotencyKeyReused):
        ledger.put_secret(tenant, "api/key", "v2", None, None,
                          request(idempotency_key="k1", request_hash="h2"))
    assert ledger.list_versions(tenant, "api/key")[0] == 1
    assert ledger.get_secret(tenant, "api/key", request()).value == "v1"


def test_an_idempotent_request_repeated_on_a_second_runtime_writes_once(
        ledgers: tuple[Blocking, Blocking], tenant: str) -> None:
    first_ledger, second_ledger = ledgers
    first = first_ledger.put_secret(tenant, "api/key", "v1", None, None,
                                    request(idempotency_key="k1", request_hash="h1"))
    again = second_ledger.put_secret(tenant, "api/key", "v1", None, None,
                                     request(idempotency_key="k1", request_hash="h1"))
    assert again == first
    with pytest.raises(IdempotencyKeyReused):
        second_ledger.put_secret(tenant, "api/key", "v2", None, None,
                                 request(idempotency_key="k1", request_hash="h2"))
    for ledger in ledgers:
        assert ledger.list_versions(tenant, "api/key")[0] == 1


def test_concurrent_idempotent_requests_on_two_runtimes_write_once(
        ledgers: tuple[Blocking, Blocking], tenant: str) -> None:
    rounds, per_round = 12, 4
    results: dict[int, list[WriteResult]] = {r: [] for r in range(rounds)}
    lock = threading.Lock()

    def client(index: int) -> None:
        ledger = ledgers[index % 2]
        for round_ in range(rounds):
            ctx = request(idempotency_key=f"idem-{round_}", request_hash=f"hash-{round_}")
            result = ledger.put_secret(tenant, f"idem/{round_}", round_, None, None, ctx)
            with lock:
                results[round_].append(result)

    run_together(per_round, client)

    for round_ in range(rounds):
        assert len(results[round_]) == per_round
        assert len(set(results[round_])) == 1, f"round {round_}: {results[round_]}"
        assert ledgers[0].list_versions(tenant, f"idem/{round_}")[0] == 1


def test_a_key_rotation_repeated_with_its_idempotency_key_answers_the_first_version(
        ledger: Blocking, tenant: str) -> None:
    ctx = RequestContext("tok_test", "req-rotate", "rotate-once", "hash-of-the-request")
    first = ledger.rotate_tenant_key(tenant, ctx)
    assert ledger.rotate_tenant_key(tenant, ctx) == first == 2
    assert ledger.rotate_tenant_key(tenant, RequestContext("tok_test", "req-other")) == 3
