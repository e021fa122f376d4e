"""The change feed, asked of the core on both backends: every change once, in commit
order, metadata only, resumable from any cursor (after a restart and a replay too), each
naming its record in the tenant's transparency log; one read of the store per batch
projected, however many subscribers wait."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secrets_ledger.core.change_hub import ChangeHub, Deliver
from secrets_ledger.core.changes import CHANGE_ACTIONS, ChangePage
from secrets_ledger.core.feed_ports import ChangeRow
from secrets_ledger.core.principals import Principal
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.core.settings import Settings
from secrets_ledger.domain.changes import DeleteKey, RequestContext, SetValue
from secrets_ledger.domain.errors import (
    Forbidden,
    InvalidRequest,
    LedgerError,
    TenantNotFound,
)
from secrets_ledger.projections.views import ALL_VIEWS
from secrets_ledger.runtime import LedgerRuntime
from tests.support import Blocking, run

ADMIN = Principal("tok_admin", "admin", None)
CTX = RequestContext("tok_writer", "req-feed")


def page(runtime: LedgerRuntime, tenant: str | None = "acme", **options: object
         ) -> ChangePage:
    return run(runtime.ledger.changes.page(ADMIN, tenant, **options))  # type: ignore[arg-type]


def everything(runtime: LedgerRuntime, tenant: str | None = "acme", limit: int = 1000,
               after: str = "0", **options: object) -> list[ChangeRow]:
    rows: list[ChangeRow] = []
    while True:
        got = page(runtime, tenant, after=after, limit=limit, **options)
        rows += got.items
        if not got.items:
            return rows
        after = str(got.cursor)


@pytest.fixture
def ledger_with_history(ledger: Blocking) -> Blocking:
    ledger.open_tenant("acme", CTX)
    ledger.put_secret("acme", "db/password", "s3cret-one", None, None, CTX)
    ledger.write_secrets("acme", [SetValue("db/user"), SetValue("api/key")],
                         {"db/user": "u", "api/key": "k"}, CTX)
    ledger.get_secret("acme", "db/user", CTX)  # a read: no change
    ledger.put_secret("acme", "db/password", "s3cret-two", None, None, CTX)
    ledger.write_secrets("acme", [DeleteKey("api/key")], {}, CTX)
    return ledger


def test_every_change_comes_once_in_commit_order_without_values(
        runtime: LedgerRuntime, ledger_with_history: Blocking) -> None:
    rows = everything(runtime)
    assert [(r.action, r.key, r.version) for r in rows] == [
        ("tenant_opened", None, None), ("write", "db/password", 1), ("write", "db/user", 1),
        ("write", "api/key", 1), ("write", "db/password", 2), ("delete", "api/key", 1)]
    assert [r.position for r in rows] == sorted({r.position for r in rows})
    assert {r.actor for r in rows} == {"tok_writer"} and {r.tenant for r in rows} == {"acme"}
    assert "s3cret" not in repr(rows)


def test_stream_versions_are_gap_free_and_name_the_log_leaf_of_each_record(
        runtime: LedgerRuntime, ledger_with_history: Blocking) -> None:
    rows = everything(runtime)
    assert sorted({r.stream_version for r in rows}) == [1, 2, 3, 4, 5]
    leaves = run(runtime.ledger.transparency.leaves(ADMIN, "acme", 0, 6))
    for row in rows:
        leaf = leaves[row.log_index]  # type: ignore[index]
        assert (leaf.record["kind"], leaf.record["version"]) == ("event", row.stream_version)


def test_a_cursor_resumes_after_the_last_change_seen(
        runtime: LedgerRuntime, ledger_with_history: Blocking) -> None:
    assert everything(runtime, limit=1) == everything(runtime)
    first = page(runtime, limit=2)
    rest = everything(runtime, after=str(first.cursor))
    assert first.items + rest == everything(runtime)


def test_filters_by_key_prefix_and_action(runtime: LedgerRuntime,
                                          ledger_with_history: Blocking) -> None:
    assert [(r.key, r.version) for r in everything(runtime, prefix="db/")] == [
        ("db/password", 1), ("db/user", 1), ("db/password", 2)]
    assert [r.key for r in everything(runtime, actions={"delete"})] == ["api/key"]
    skipped = page(runtime, actions={"shredded"})
    assert skipped.items == [] and skipped.cursor >= everything(runtime)[-1].position


def test_an_admin_follows_every_tenant_in_one_order(runtime: LedgerRuntime,
                                                    ledger_with_history: Blocking) -> None:
    ledger_with_history.open_tenant("globex", CTX)
    ledger_with_history.put_secret("globex", "k", "v", None, None, CTX)
    ledger_with_history.put_secret("acme", "k", "v", None, None, CTX)
    rows = everything(runtime, None)
    assert [(r.tenant, r.key) for r in rows[-3:]] == [("globex", None), ("globex", "k"),
                                                      ("acme", "k")]
    assert [r.position for r in rows] == sorted(r.position for r in rows)


def test_a_wait_returns_as_soon_as_a_change_is_projected(
        runtime: LedgerRuntime, ledger_with_history: Blocking) -> None:
    head = page(runtime, after="now")
    assert head.items == []

    async def wait_then_write() -> tuple[ChangePage, float]:
        waiting = asyncio.ensure_future(runtime.ledger.changes.page(
            ADMIN, "acme", after=str(head.cursor), wait=30))
        await asyncio.sleep(0.2)
        assert not waiting.done()
        started = time.monotonic()
        await runtime.ledger.secrets.put(ADMIN, "acme", "late", "v", None, None,
                                         _request())
        return await waiting, time.monotonic() - started

    got, took = run(wait_then_write())
    assert [(r.key, r.action) for r in got.items] == [("late", "write")]
    assert took < 5


def test_many_waiting_subscribers_cost_one_read_of_the_store_per_batch(
        runtime: LedgerRuntime, ledger_with_history: Blocking) -> None:
    head = page(runtime, after="now").cursor

    async def two_hundred_wait() -> tuple[list[ChangePage], int]:
        hub = runtime.ledger.changes.hub()
        waiters = [asyncio.ensure_future(runtime.ledger.changes.page(
            ADMIN, "acme", after=str(head), wait=30)) for _ in range(200)]
        await asyncio.sleep(0.3)
        before = hub.fetches
        await runtime.ledger.secrets.put(ADMIN, "acme", "fan", "v", None, None, _request())
        pages = await asyncio.gather(*waiters)
        return pages, hub.fetches - before

    pages, fetches = run(two_hundred_wait())
    assert all([r.key for r in p.items] == ["fan"] for p in pages)
    assert fetches <= 5


async def _following(runtime: LedgerRuntime, deliver: Deliver, heartbeat: float = 30.0
                     ) -> AsyncIterator[ChangePage]:
    head = (await runtime.ledger.changes.page(ADMIN, "acme", after="now")).cursor
    return await runtime.ledger.changes.follow(ADMIN, "acme", after=str(head),
                                               heartbeat=heartbeat, deliver=deliver)


async def _put(runtime: LedgerRuntime, key: str) -> None:
    await runtime.ledger.secrets.put(ADMIN, "acme", key, "v", None, None, _request())


async def _until(done: Callable[[], bool]) -> None:
    async with asyncio.timeout(10):
        while not done():
            await asyncio.sleep(0.01)


def test_a_caught_up_subscriber_is_delivered_its_pages_without_being_woken(
        runtime: LedgerRuntime, ledger_with_history: Blocking) -> None:
    delivered: list[tuple[list[str], int]] = []

    async def follow() -> bool:
        pages = await _following(runtime, lambda rows, cursor: not delivered.append(
            ([r.key or "" for r in rows], cursor)))
        waiting = asyncio.ensure_future(anext(pages))
        await asyncio.sleep(0.2)
        for key in ("one", "two", "three"):
            await _put(runtime, key)
        await _until(lambda: sum(len(keys) for keys, _ in delivered) == 3)
        woken = waiting.done()
        waiting.cancel()
        return woken

    assert run(follow()) is False
    assert [key for keys, _ in delivered for key in keys] == ["one", "two", "three"]
    assert [cursor for _, cursor in delivered] == sorted({c for _, c in delivered})


def test_a_refused_delivery_comes_next_through_the_iterator_and_only_there(
        runtime: LedgerRuntime, ledger_with_history: Blocking) -> None:
    offered: list[list[str]] = []

    def deliver(rows: list[ChangeRow], cursor: int) -> bool:
        offered.append([r.key or "" for r in rows])
        return len(offered) > 1  # the first refused: its socket was full

    async def follow() -> tuple[list[str], bool]:
        pages = await _following(runtime, deliver)
        waiting = asyncio.ensure_future(anext(pages))
        await asyncio.sleep(0.2)
        await _put(runtime, "one")
        first = await asyncio.wait_for(waiting, 10)
        waiting = asyncio.ensure_future(anext(pages))
        await asyncio.sleep(0.05)
        await _put(runtime, "two")
        await _until(lambda: len(offered) == 2)
        woken = waiting.done()
        waiting.cancel()
        return [r.key or "" for r in first.items], woken

    assert run(follow()) == (["one"], False)
    assert offered == [["one"], ["two"]]


def test_a_delivered_subscriber_still_gets_heartbeats_past_what_was_delivered(
        runtime: LedgerRuntime, ledger_with_history: Blocking) -> None:
    cursors: list[int] = []

    async def follow() -> ChangePage:
        pages = await _following(runtime, lambda rows, cursor: not cursors.append(cursor),
                                 heartbeat=0.5)
        waiting = asyncio.ensure_future(anext(pages))
        await asyncio.sleep(0.1)
        await _put(runtime, "one")
        return await asyncio.wait_for(waiting, 10)

    beat = run(follow())
    assert beat.items == [] and beat.cursor == cursors[-1]


def test_a_cursor_older_than_the_hub_holds_is_read_from_the_store(
        runtime: LedgerRuntime, ledger_with_history: Blocking) -> None:
    all_rows = everything(runtime)
    hub = run(_hub(runtime))
    hub.kept = 1
    for n in range(3):
        ledger_with_history.put_secret("acme", f"more/{n}", "v", None, None, CTX)
    assert everything(runtime) == everything(runtime, limit=2)
    assert everything(runtime)[: len(all_rows)] == all_rows


def test_an_idle_hub_stops_and_the_next_subscriber_starts_it_afresh(
        runtime: LedgerRuntime, ledger_with_history: Blocking) -> None:
    hub = run(_hub(runtime))
    hub.idle = 0.05
    before = page(runtime, after="now", wait=0.01).cursor  # an answer the hub keeps
    run(asyncio.sleep(0.5))
    assert hub.following is False
    ledger_with_history.put_secret("acme", "after-idle", "v", None, None, CTX)
    got = page(runtime, after=str(before), wait=10)
    assert [r.key for r in got.items] == ["after-idle"]


def test_cursors_survive_a_restart_and_a_replay(settings: Settings,
                                                runtime: LedgerRuntime,
                                                ledger_with_history: Blocking) -> None:
    before = everything(runtime)
    middle = before[2].position
    runtime.close()
    with LedgerRuntime(settings) as again:
        assert everything(again, after=str(middle)) == before[3:]
        again.replay(list(ALL_VIEWS))
        assert everything(again) == before
        assert everything(again, after=str(middle)) == before[3:]


def test_bad_cursors_actions_and_waits_are_refused(runtime: LedgerRuntime,
                                                   ledger_with_history: Blocking) -> None:
    for options in ({"after": "-1"}, {"after": "abc"}, {"after": "9" * 30},
                    {"after": str(10**15)}, {"actions": {"read"}}, {"wait": 61.0},
                    {"limit": 0}, {"prefix": "bad prefix"}):
        with pytest.raises(InvalidRequest):
            page(runtime, **options)


def test_readers_and_auditors_follow_their_tenant_only(
        runtime: LedgerRuntime, ledger_with_history: Blocking) -> None:
    ledger_with_history.open_tenant("globex", CTX)
    for role in ("reader", "auditor"):
        who = Principal(f"tok_{role}", role, "acme")
        assert run(runtime.ledger.changes.page(who, "acme")).items
        with pytest.raises(TenantNotFound):
            run(runtime.ledger.changes.page(who, "globex"))
        with pytest.raises(Forbidden):
            run(runtime.ledger.changes.page(who, None))
    with pytest.raises(Forbidden):
        run(runtime.ledger.changes.page(Principal("tok_w", "writer", "acme"), "acme"))
    with pytest.raises(TenantNotFound):
        page(runtime, "nobody")


def test_the_actions_are_the_audit_trails_but_read() -> None:
    from typing import get_args

    from secrets_ledger.api.rest.routes.audit import Action, ChangeAction
    assert set(get_args(ChangeAction)) == CHANGE_ACTIONS
    assert set(get_args(Action)) == CHANGE_ACTIONS | {"read"}


async def _hub(runtime: LedgerRuntime) -> ChangeHub:
    hub = runtime.ledger.changes.hub()
    await hub.started()
    return hub


def _request() -> RequestInfo:
    return RequestInfo(f"req-{uuid.uuid4().hex[:8]}")


OPERATIONS = st.lists(st.tuples(st.sampled_from(["put", "tx", "delete", "read"]),
                                st.sampled_from(["a/1", "a/2", "b/1", "ab"])),
                      min_size=1, max_size=12)
QUERIES = st.tuples(st.integers(1, 5), st.sampled_from(["", "a/", "b", "ab"]),
                    st.sampled_from([None, frozenset({"write"}),
                                     frozenset({"delete", "tenant_opened"})]))


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(operations=OPERATIONS, query=QUERIES)
def test_paging_any_history_by_cursor_yields_its_audit_trails_changes(
        runtime: LedgerRuntime, ledger: Blocking, operations: list[tuple[str, str]],
        query: tuple[int, str, frozenset[str] | None]) -> None:
    tenant = f"h-{uuid.uuid4().hex[:10]}"
    ledger.open_tenant(tenant, CTX)
    for operation, key in operations:
        if operation == "put":
            ledger.put_secret(tenant, key, "v", None, None, CTX)
        elif operation == "tx":
            ledger.write_secrets(tenant, [SetValue(key), SetValue(key + "/x")],
                                 {key: "v", key + "/x": "w"}, CTX)
        elif operation == "delete":
            with contextlib.suppress(LedgerError):
                ledger.write_secrets(tenant, [DeleteKey(key)], {}, CTX)
        else:
            with contextlib.suppress(LedgerError):
                ledger.get_secret(tenant, key, CTX)
    limit, prefix, actions = query
    expected = [(row.position, row.action, row.key, row.version)
                for row in ledger.audit(tenant, limit=1000).items
                if row.action != "read" and (not prefix or (row.key or "").startswith(prefix))
                and (actions is None or row.action in actions)]
    got = everything(runtime, tenant, limit=limit, prefix=prefix, actions=actions)
    assert [(r.position, r.action, r.key, r.version) for r in got] == expected
    every_tenant = everything(runtime, None, limit=limit, prefix=prefix, actions=actions)
    assert [r for r in every_tenant if r.tenant == tenant] == got
