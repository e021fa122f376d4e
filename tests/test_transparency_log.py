"""Each tenant's transparency log, as stored (issue 16): one leaf per stored record of the
tenant, in store order, appended in the records' own transaction, recomputable by an
auditor from the records alone. Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
import time

import psycopg

from secrets_ledger.adapters.backend import Storage
from secrets_ledger.adapters.sql.tlog import TABLES
from secrets_ledger.adapters.sqlite.storage import EVENTS_FILE
from secrets_ledger.core.principals import Principal
from secrets_ledger.core.settings import Settings
from secrets_ledger.domain.merkle_log import peaks
from secrets_ledger.domain.reads import ValueRead, ValueReads
from secrets_ledger.domain.tenant import Tenant, tenant_id_for
from secrets_ledger.runtime import LedgerRuntime
from secrets_ledger.verifier import (
    event_link_hash,
    leaf_hash,
    reads_digest,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from tests.support import Blocking, blocking, held_writer, run
from tests.test_concurrency import request, run_together
from tests.test_tamper_evidence import cli


def recomputed_leaves(storage: Storage) -> dict[str, list[bytes]]:
    """Every tenant's leaves, recomputed from the stored records the way an auditor does
    (the verifier's own functions), in store order."""
    leaves: dict[str, list[bytes]] = {}
    position = 0
    while page := storage.streams.stored_after(position, 1000):
        for stored in page:
            event = stored.decode()
            if isinstance(event, Tenant.Event):
                fields = {k: v for k, v in vars(event).items()}
                link = event_link_hash({"tenant_id": str(event.originator_id),
                                        "version": event.originator_version,
                                        "type": type(event).__qualname__,
                                        "at": event.timestamp.isoformat(), "fields": fields})
                assert link == event.hash
                leaves.setdefault(str(event.originator_id), []).append(
                    b"E" + bytes.fromhex(link))
            elif isinstance(event, ValueReads.Recorded | ValueRead.Recorded):
                reads = (event.reads if isinstance(event, ValueReads.Recorded) else
                         [{"tenant_id": event.tenant_id, "key": event.key,
                           "version": event.version, "actor": event.actor,
                           "request_id": event.request_id}])
                for tenant_id in dict.fromkeys(read["tenant_id"] for read in reads):
                    mine = [read for read in reads if read["tenant_id"] == tenant_id]
                    leaves.setdefault(tenant_id, []).append(b"R" + reads_digest(
                        str(event.originator_id), event.timestamp.isoformat(), mine))
        position = page[-1].position
    return leaves


def assert_logs_match_records(storage: Storage) -> dict[str, list[bytes]]:
    expected = recomputed_leaves(storage)
    rows = storage.log_rows
    for tenant_id, leaves in expected.items():
        stored = rows.leaves(tenant_id, 0, len(leaves) + 1)
        assert [leaf.leaf_index for leaf in stored] == list(range(len(leaves)))
        assert [leaf.hashes[:32] for leaf in stored] == [leaf_hash(leaf) for leaf in leaves]
        size, root = rows.size(tenant_id) or (0, b"")
        assert size == len(leaves)
        assert root == root_hash([leaf_hash(leaf) for leaf in leaves])
    return expected


def on_log_tables(settings: Settings, *statements: tuple[str, tuple[object, ...]]) -> None:
    """Runs statements on the logs' tables behind the ledger's back (``%s`` placeholders)."""
    if settings.database_url is None:
        with sqlite3.connect(settings.data_dir / EVENTS_FILE) as conn:
            for sql, params in statements:
                conn.execute(sql.replace("%s", "?"), params)
        return
    with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True) as conn:
        conn.execute(f"SET search_path TO {settings.database_schema}")
        for sql, params in statements:
            conn.execute(sql, params)  # type: ignore[arg-type]


def forget_logs(settings: Settings) -> None:
    """Leaves the store as a version before the logs left it: records, and no logs."""
    on_log_tables(settings, *[(f"DELETE FROM {table}", ()) for table in TABLES])


def test_every_event_and_read_of_a_tenant_is_a_leaf_of_its_log(ledger: Blocking,
                                                               runtime: LedgerRuntime) -> None:
    ledger.open_tenant("acme", request())
    for n in range(5):
        ledger.put_secret("acme", "db/password", f"pw-{n}", None, None, request())
    ledger.get_secret("acme", "db/password", request())
    ledger.delete_secret("acme", "db/password", None, request())
    logs = assert_logs_match_records(runtime.storage)
    acme = logs[str(tenant_id_for("acme"))]
    assert [leaf[:1] for leaf in acme] == [b"E"] * 6 + [b"R"] + [b"E"]


def test_a_record_of_two_tenants_reads_is_one_leaf_in_each_log_covering_its_own(
        ledger: Blocking, runtime: LedgerRuntime) -> None:
    for tenant in ("acme", "globex"):
        ledger.open_tenant(tenant, request())
        ledger.put_secret(tenant, "k", "v", None, None, request())
    readers = [threading.Thread(target=ledger.get_secret, args=(tenant, "k", request()))
               for tenant in ("acme", "globex", "acme")]
    with held_writer(runtime.ledger):  # the three reads go into one record
        for reader in readers:
            reader.start()
        time.sleep(0.2)
    for reader in readers:
        reader.join()
    logs = assert_logs_match_records(runtime.storage)
    acme, globex = (logs[str(tenant_id_for(name))] for name in ("acme", "globex"))
    assert acme[-1][:1] == globex[-1][:1] == b"R"
    assert acme[-1] != globex[-1]  # each covers its own tenant's reads only


def test_two_processes_appending_to_one_log_keep_it_whole(settings: Settings) -> None:
    first, second = LedgerRuntime(settings), LedgerRuntime(settings)
    try:
        one, two = blocking(first), blocking(second)
        one.open_tenant("acme", request())
        errors: list[BaseException] = []

        def work(index: int) -> None:
            ledger = (one, two)[index % 2]
            for n in range(6):
                ledger.put_secret("acme", f"k{index}", f"v{n}", None, None, request())
                ledger.get_secret("acme", f"k{index}", request())

        run_together(8, work)
        assert not errors
        logs = assert_logs_match_records(first.storage)
        acme = logs[str(tenant_id_for("acme"))]
        assert sum(leaf[:1] == b"E" for leaf in acme) == 1 + 8 * 6  # reads share records
    finally:
        first.close()
        second.close()


def test_the_stored_rows_hold_every_complete_subtree(ledger: Blocking,
                                                     runtime: LedgerRuntime) -> None:
    ledger.open_tenant("acme", request())
    for n in range(20):
        ledger.put_secret("acme", "k", f"v{n}", None, None, request())
    tenant_id = str(tenant_id_for("acme"))
    leaves = recomputed_leaves(runtime.storage)[tenant_id]
    hashes = [leaf_hash(leaf) for leaf in leaves]
    stored = {leaf.leaf_index: leaf.hashes for leaf in
              runtime.storage.log_rows.leaves(tenant_id, 0, 100)}
    for index, row in stored.items():
        for level in range(len(row) // 32):
            start = index + 1 - (1 << level)
            assert row[32 * level:32 * (level + 1)] == root_hash(hashes[start:index + 1])
    assert len(peaks(len(hashes))) == bin(len(hashes)).count("1")


def test_a_store_written_before_the_logs_gets_them_built_the_same(
        ledger: Blocking, runtime: LedgerRuntime, settings: Settings) -> None:
    ledger.open_tenant("acme", request())
    for n in range(7):
        ledger.put_secret("acme", f"k{n % 3}", f"v{n}", None, None, request())
        ledger.get_secret("acme", f"k{n % 3}", request())
    rows = runtime.storage.log_rows
    tenant_id = str(tenant_id_for("acme"))
    before = rows.size(tenant_id)
    runtime.close()
    forget_logs(settings)
    with LedgerRuntime(settings) as migrated:  # opening migrates, logs included
        assert migrated.storage.log_rows.size(tenant_id) == before
        assert_logs_match_records(migrated.storage)
        assert migrated.storage.migrate() == []  # idempotent: nothing left to do


def acme_with_history(ledger: Blocking) -> str:
    ledger.open_tenant("acme", request())
    for n in range(6):
        ledger.put_secret("acme", "k", f"v{n}", None, None, request())
        ledger.get_secret("acme", "k", request())
    return str(tenant_id_for("acme"))


def assert_log_broken(runtime: LedgerRuntime, ledger: Blocking, reason: str) -> None:
    check = ledger.verify("acme")
    assert not check.ok
    assert reason in str(check.reason)
    scan = ledger.verify_all()
    assert not scan.logs.ok
    assert reason in str(scan.logs.reason)


def test_an_untouched_log_verifies(ledger: Blocking, runtime: LedgerRuntime) -> None:
    acme_with_history(ledger)
    runtime.ledger.checkpointer.sign_round()
    assert ledger.verify("acme").ok
    scan = ledger.verify_all()
    assert scan.logs.ok
    assert scan.logs.leaves == len(recomputed_leaves(runtime.storage)[
        str(tenant_id_for("acme"))])


def test_an_edited_leaf_is_detected(ledger: Blocking, runtime: LedgerRuntime,
                                    settings: Settings) -> None:
    tenant_id = acme_with_history(ledger)
    on_log_tables(settings, ("UPDATE log_leaves SET hashes = %s WHERE tenant_id = %s"
                             " AND idx = 3", (b"\x00" * 32, tenant_id)))
    assert_log_broken(runtime, ledger, "leaf 3 of tenant")


def test_an_edited_interior_hash_is_detected(ledger: Blocking, runtime: LedgerRuntime,
                                             settings: Settings) -> None:
    tenant_id = acme_with_history(ledger)
    row = runtime.storage.log_rows.rows(tenant_id, [3])[3]  # leaf 3 completes levels 1, 2
    on_log_tables(settings, ("UPDATE log_leaves SET hashes = %s WHERE tenant_id = %s"
                             " AND idx = 3", (row[:64] + b"\x01" * 32, tenant_id)))
    assert_log_broken(runtime, ledger, "does not hash to what its record recomputes to")


def test_a_deleted_last_leaf_is_detected(ledger: Blocking, runtime: LedgerRuntime,
                                         settings: Settings) -> None:
    tenant_id = acme_with_history(ledger)
    size = runtime.storage.log_rows.size(tenant_id)
    assert size is not None
    on_log_tables(settings, ("DELETE FROM log_leaves WHERE tenant_id = %s AND idx = %s",
                             (tenant_id, size[0] - 1)))
    assert_log_broken(runtime, ledger, "is missing")


def test_a_checkpoint_of_another_root_is_detected(ledger: Blocking, runtime: LedgerRuntime,
                                                  settings: Settings) -> None:
    tenant_id = acme_with_history(ledger)
    runtime.ledger.checkpointer.sign_round()
    on_log_tables(settings, ("UPDATE log_checkpoints SET root = %s WHERE tenant_id = %s",
                             (b"\x07" * 32, tenant_id)))
    assert_log_broken(runtime, ledger, "signed checkpoint")


def test_proofs_issued_before_a_shred_still_verify_after_it(ledger: Blocking,
                                                            runtime: LedgerRuntime) -> None:
    tenant_id = acme_with_history(ledger)
    transparency = runtime.ledger.transparency
    operator = Principal.operator()
    before = run(transparency.checkpoint(operator, "acme"))
    proof = run(transparency.inclusion(operator, "acme", 2, before.size))
    leaves = recomputed_leaves(runtime.storage)[tenant_id]
    ledger.destroy_versions("acme", "k", [1, 2], request())
    ledger.shred_tenant("acme", request())
    verify_inclusion(2, before.size, leaf_hash(leaves[2]), proof.hashes, before.root)
    runtime.ledger.checkpointer.sign_round()  # as a server's round would, within a second
    after = run(transparency.checkpoint(operator, "acme"))
    assert after.size == before.size + 2  # the destroy and the shred are leaves too
    consistency = run(transparency.consistency(operator, "acme", before.size, after.size))
    verify_consistency(before.size, after.size, consistency.hashes, before.root, after.root)
    assert recomputed_leaves(runtime.storage)[tenant_id][:before.size] == leaves[:before.size]
    assert ledger.verify("acme").ok


def test_replay_checks_every_log_against_the_records(ledger: Blocking, runtime: LedgerRuntime,
                                                     settings: Settings) -> None:
    tenant_id = acme_with_history(ledger)
    runtime.close()
    replayed = cli(settings, "replay")
    assert replayed.returncode == 0, replayed.stderr
    assert "logs: 1 logs" in replayed.stderr
    on_log_tables(settings, ("DELETE FROM log_leaves WHERE tenant_id = %s AND idx = 0",
                             (tenant_id,)))
    refused = cli(settings, "replay")
    assert refused.returncode == 2
    assert "leaf 0 of tenant" in refused.stderr


def test_migrate_builds_the_logs_of_an_older_store_once(ledger: Blocking, runtime: LedgerRuntime,
                                                        settings: Settings) -> None:
    acme_with_history(ledger)
    runtime.close()
    forget_logs(settings)
    first = cli(settings, "migrate")
    assert first.returncode == 0, first.stderr
    assert "transparency logs (" in first.stdout
    again = cli(settings, "migrate")
    assert "nothing (up to date)" in again.stdout
    assert cli(settings, "verify").returncode == 0
