"""Moving a tenant between groups (``secrets-ledger tenant move``), asked of the core on two
layouts (two schemas of one database, two PostgreSQL servers): under write load nothing
acknowledged is lost or applied twice, the history verifies where it went, and nothing
readable stays where it was."""

from __future__ import annotations

import asyncio

import pytest

from secrets_ledger.core.principals import BearerToken
from secrets_ledger.core.tenant_move import MoveReport
from secrets_ledger.domain.errors import InvalidRequest
from secrets_ledger.domain.tenant import Tenant, tenant_id_for
from secrets_ledger.grouped_runtime import GroupedRuntime
from secrets_ledger.verifier import merkle, records
from tests.support import run
from tests.test_tenant_groups import ADMIN, opened, request, stream_head, token_of

WRITERS = 4


async def _writes_during(grouped: GroupedRuntime, tenant: str, writer: BearerToken,
                         ) -> tuple[MoveReport, dict[str, int]]:
    """Writers PUT their own keys (value n as version n) before, during and after the
    move; returns the move's report and each key's last acknowledged value."""
    acknowledged: dict[str, int] = {}
    stop = asyncio.Event()

    async def write(key: str) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            written = await grouped.ledger.secrets.put(writer, tenant, key, n, None, None,
                                                       request())
            assert written[0].version == n if isinstance(written, list) else True
            acknowledged[key] = n

    tasks = [asyncio.ensure_future(write(f"w{i}")) for i in range(WRITERS)]
    await asyncio.sleep(0.5)
    report = await grouped.ledger.grouped_tenants.move(ADMIN, tenant, "blue", request())
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*tasks)
    return report, acknowledged


def test_a_tenant_moves_under_write_load_and_every_acknowledged_write_is_there(
        grouped: GroupedRuntime) -> None:
    tenant = opened(grouped, "home")
    writer, reader = token_of(grouped, "writer", tenant), token_of(grouped, "reader", tenant)
    run(grouped.ledger.secrets.put(writer, tenant, "before", "v", None, None, request()))
    run(grouped.ledger.reads.value(reader, tenant, "before", request()))  # a read record
    report, acknowledged = run(_writes_during(grouped, tenant, writer))
    print(f"moved {report.records} records; unavailable {report.unavailable_seconds:.3f} s")
    assert (report.source, report.target) == ("home", "blue")
    for key, n in acknowledged.items():
        read = run(grouped.ledger.reads.value(reader, tenant, key, request()))
        assert (read.value, read.version) == (n, n), key  # none lost, none twice
    assert run(grouped.ledger.history.verify(ADMIN, tenant)).ok
    assert grouped.ledger.groups.directory.group_of(tenant) == "blue"


def test_a_moved_tenant_leaves_nothing_readable_where_it_was(grouped: GroupedRuntime) -> None:
    tenant = opened(grouped, "home")
    writer = token_of(grouped, "writer", tenant)
    run(grouped.ledger.secrets.put(writer, tenant, "k", "s3cret", None, None, request()))
    run(grouped.ledger.grouped_tenants.move(ADMIN, tenant, "blue", request()))
    home, tenant_id = grouped.groups["home"].storage, tenant_id_for(tenant)
    assert home.key_rows.tenant_key(str(tenant_id), 1) is None
    assert home.token_rows.listing(tenant) == []
    last = home.streams.stored_event(tenant_id, stream_head(grouped.groups["home"], tenant) or 0)
    assert isinstance(last, Tenant.MovedOut) and last.group == "blue"
    listed = [info.tenant for info in run(grouped.ledger.tenants.list_all(ADMIN))]
    assert listed.count(tenant) == 1
    read = run(grouped.ledger.reads.value(writer, tenant, "k", request()))
    assert read.value == "s3cret"  # its token and keys went with it


def test_a_moved_tenants_log_keeps_every_leaf_so_old_proofs_hold(
        grouped: GroupedRuntime) -> None:
    tenant = opened(grouped, "home")
    reader = token_of(grouped, "reader", tenant)
    run(grouped.ledger.secrets.put(ADMIN, tenant, "k", 1, None, None, request()))
    run(grouped.ledger.reads.value(reader, tenant, "k", request()))
    def leaves(group: str) -> list[bytes]:
        rows = grouped.groups[group].storage.log_rows
        return [row[3][:32] for row in rows.leaf_rows(str(tenant_id_for(tenant)), 0, 99)]

    before = leaves("home")  # opened, the token, the write, the read record
    run(grouped.ledger.grouped_tenants.move(ADMIN, tenant, "blue", request()))
    assert len(before) == 4 and leaves("home")[:4] == before
    assert len(leaves("home")) == 5 and leaves("blue")[:5] == leaves("home")  # the fence
    assert len(leaves("blue")) == 6  # and MovedIn: the history goes on there
    assert run(grouped.ledger.history.verify(ADMIN, tenant)).ok


def test_the_feed_of_every_tenant_serves_each_change_of_a_moved_tenant_once(
        grouped: GroupedRuntime) -> None:
    tenant = opened(grouped, "home")
    run(grouped.ledger.secrets.put(ADMIN, tenant, "before", 1, None, None, request()))
    run(grouped.ledger.grouped_tenants.move(ADMIN, tenant, "blue", request()))
    run(grouped.ledger.secrets.put(ADMIN, tenant, "after", 1, None, None, request()))
    seen: list[tuple[int, str]] = []
    after = "0"
    while (page := run(grouped.ledger.changes.page(ADMIN, None, after=after, limit=2))).items:
        seen += [(row.stream_version, row.action) for row in page.items
                 if row.tenant == tenant]
        after = page.cursor_text
    assert seen == [(1, "tenant_opened"), (2, "write"), (3, "moved_out"), (4, "moved_in"),
                    (5, "write")]
    tenant_feed = run(grouped.ledger.changes.page(ADMIN, tenant, limit=100)).items
    assert [row.stream_version for row in tenant_feed] == [1, 2, 3, 4, 5]


def test_a_move_stopped_after_its_switch_is_finished_by_running_it_again(
        grouped: GroupedRuntime, monkeypatch: pytest.MonkeyPatch) -> None:
    tenant = opened(grouped, "home")
    token_of(grouped, "writer", tenant)
    left_behind = grouped.ledger.grouped_tenants.mover.copies["home"]

    def stopped(*_: object) -> None:
        raise RuntimeError("the operator's machine went down")

    monkeypatch.setattr(left_behind, "erase", stopped)
    with pytest.raises(RuntimeError):
        run(grouped.ledger.grouped_tenants.move(ADMIN, tenant, "blue", request()))
    monkeypatch.undo()
    home = grouped.groups["home"].storage
    assert home.token_rows.listing(tenant) != []  # switched, but not erased
    with pytest.raises(InvalidRequest, match="erased now"):
        run(grouped.ledger.grouped_tenants.move(ADMIN, tenant, "blue", request()))
    assert home.token_rows.listing(tenant) == []
    assert home.key_rows.tenant_key(str(tenant_id_for(tenant)), 1) is None


def test_moving_to_where_it_is_or_to_no_group_is_refused(grouped: GroupedRuntime) -> None:
    tenant = opened(grouped, "blue")
    for target in ("blue", "nowhere"):
        with pytest.raises(InvalidRequest):
            run(grouped.ledger.grouped_tenants.move(ADMIN, tenant, target, request()))


def test_an_auditor_recomputes_a_checkpoint_signed_before_the_move_from_the_new_group(
        grouped: GroupedRuntime) -> None:
    tenant = opened(grouped, "home")
    reader = token_of(grouped, "reader", tenant)
    run(grouped.ledger.secrets.put(ADMIN, tenant, "k", 1, None, None, request()))
    run(grouped.ledger.reads.value(reader, tenant, "k", request()))
    grouped.groups["home"].ledger.checkpointer.sign_round()
    before = run(grouped.ledger.transparency.checkpoint(ADMIN, tenant))
    run(grouped.ledger.grouped_tenants.move(ADMIN, tenant, "blue", request()))
    served = run(grouped.ledger.transparency.leaves(ADMIN, tenant, 0, before.size))
    recomputed = [merkle.leaf_hash(records.leaf_of(item.record)) for item in served]
    assert before.size == 4 and merkle.root_hash(recomputed) == before.root
