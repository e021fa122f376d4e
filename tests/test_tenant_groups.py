"""Tenant groups: each tenant in one group's storage, the directory the only place that
knows which, and every use case answered as on one store. Run on two layouts: two
schemas of one PostgreSQL database, and two separate PostgreSQL servers."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secrets_ledger.core.directory import placement
from secrets_ledger.core.principals import BearerToken, Principal
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.core.settings import GroupStore, Settings
from secrets_ledger.core.signing_keys import aws_key_pair
from secrets_ledger.domain.errors import (
    InvalidRequest,
    TenantExists,
    TenantNotFound,
    TokenNotFound,
    Unauthorized,
)
from secrets_ledger.domain.tenant import tenant_id_for
from secrets_ledger.grouped_runtime import GroupedRuntime, group_settings
from secrets_ledger.runtime import LedgerRuntime
from tests.support import run

ADMIN = Principal.operator()


def request() -> RequestInfo:
    return RequestInfo(f"req-{uuid.uuid4().hex[:8]}")


def tenant_in(group: str, groups: tuple[str, ...] = ("blue", "home")) -> str:
    """A new tenant name that the placement rule puts in ``group``."""
    while True:
        name = f"t-{uuid.uuid4().hex[:10]}"
        if placement(name, sorted(groups)) == group:
            return name


def opened(runtime: GroupedRuntime, group: str) -> str:
    name = tenant_in(group)
    run(runtime.ledger.tenants.open(ADMIN, name, request()))
    return name


def token_of(runtime: GroupedRuntime, role: str, tenant: str | None) -> BearerToken:
    issued = run(runtime.ledger.tokens.issue(ADMIN, role, tenant, None, "", request()))  # type: ignore[arg-type]
    return BearerToken.of(issued.token)


def stream_head(group: LedgerRuntime, tenant: str) -> int | None:
    return group.storage.streams.head(tenant_id_for(tenant))


def test_a_new_tenant_is_stored_only_in_the_group_the_rule_places_it_in(
        grouped: GroupedRuntime) -> None:
    for group in ("home", "blue"):
        name = opened(grouped, group)
        other = "blue" if group == "home" else "home"
        assert stream_head(grouped.groups[group], name) == 1
        assert stream_head(grouped.groups[other], name) is None
        assert grouped.ledger.groups.directory.group_of(name) == group


def test_a_tenants_own_token_writes_and_reads_in_its_group(grouped: GroupedRuntime) -> None:
    name = opened(grouped, "blue")
    writer, reader = token_of(grouped, "writer", name), token_of(grouped, "reader", name)
    run(grouped.ledger.secrets.put(writer, name, "db", "s3cret", None, None, request()))
    read = run(grouped.ledger.reads.value(reader, name, "db", request()))
    assert (read.value, read.version) == ("s3cret", 1)
    assert stream_head(grouped.groups["blue"], name) == 4  # opened, 2 tokens, the write
    assert stream_head(grouped.groups["home"], name) is None


def test_a_token_of_a_tenant_in_another_group_is_refused_as_on_one_store(
        grouped: GroupedRuntime) -> None:
    mine, theirs = opened(grouped, "home"), opened(grouped, "blue")
    writer = token_of(grouped, "writer", mine)
    head = stream_head(grouped.groups["blue"], theirs)
    with pytest.raises(TenantNotFound):
        run(grouped.ledger.secrets.put(writer, theirs, "k", "v", None, None, request()))
    assert stream_head(grouped.groups["blue"], theirs) == head


def test_an_unknown_token_is_refused_in_every_group(grouped: GroupedRuntime) -> None:
    for group in ("home", "blue"):
        name = opened(grouped, group)
        with pytest.raises(Unauthorized):
            run(grouped.ledger.reads.keys(BearerToken.of("slt_nobody_" + "x" * 40), name))


def test_an_admin_token_acts_on_tenants_of_every_group(grouped: GroupedRuntime) -> None:
    admin = token_of(grouped, "admin", None)
    for group in ("home", "blue"):
        name = tenant_in(group)
        run(grouped.ledger.tenants.open(admin, name, request()))
        issued = run(grouped.ledger.tokens.issue(admin, "reader", name, None, "", request()))
        assert run(grouped.ledger.tenant_of(BearerToken.of(issued.token))) == name
        assert stream_head(grouped.groups[group], name) == 2


def test_listing_tenants_merges_every_group_by_name(grouped: GroupedRuntime) -> None:
    names = [opened(grouped, group) for group in ("blue", "home", "blue", "home")]
    listed = [info.tenant for info in run(grouped.ledger.tenants.list_all(ADMIN))]
    assert listed == sorted(names)


def test_listing_tokens_merges_every_group_and_revoking_finds_the_token_anywhere(
        grouped: GroupedRuntime) -> None:
    blue, home = opened(grouped, "blue"), opened(grouped, "home")
    tokens = {tenant: run(grouped.ledger.tokens.issue(ADMIN, "reader", tenant, None, "",
                                                      request())) for tenant in (blue, home)}
    listed = {record.token_id for record in run(grouped.ledger.tokens.list_all(ADMIN))}
    assert {issued.token_id for issued in tokens.values()} <= listed
    assert run(grouped.ledger.tokens.revoke_any(ADMIN, tokens[blue].token_id,
                                                request())) == tokens[blue].token_id
    with pytest.raises(Unauthorized):
        run(grouped.ledger.reads.keys(BearerToken.of(tokens[blue].token), blue))
    with pytest.raises(TokenNotFound):
        run(grouped.ledger.tokens.revoke_any(ADMIN, "tok_0000000000000000", request()))


def test_an_aws_access_key_of_a_tenant_in_another_group_is_found(
        grouped: GroupedRuntime) -> None:
    name = opened(grouped, "blue")
    issued = run(grouped.ledger.tokens.issue(ADMIN, "writer", name, None, "", request()))
    key_id, secret = aws_key_pair(issued.token)
    found = run(grouped.ledger.signing_keys.of(key_id))
    assert (found.tenant, found.secret) == (name, secret.encode())


def test_tenants_opened_before_groups_stay_in_the_home_group(
        grouped_settings: Settings) -> None:
    alone = grouped_settings.model_copy(update={"groups": {}})
    with LedgerRuntime(alone) as single:
        names = [f"old-{uuid.uuid4().hex[:8]}" for _ in range(3)]
        for name in names:
            run(single.ledger.tenants.open(ADMIN, name, request()))
        single.projector.catch_up()
    with GroupedRuntime(grouped_settings) as grouped:
        for name in names:
            assert grouped.ledger.groups.directory.group_of(name) == "home"
            assert run(grouped.ledger.reads.keys(ADMIN, name)).items == []


def test_a_tenant_opened_before_groups_and_not_listed_is_never_placed_elsewhere(
        grouped_settings: Settings) -> None:
    alone = grouped_settings.model_copy(update={"groups": {}})
    name = tenant_in("blue")  # the rule would put a new tenant of this name in blue
    with LedgerRuntime(alone, follow=False) as single:  # not projected: not listed at start
        run(single.ledger.tenants.open(ADMIN, name, request()))
    with GroupedRuntime(grouped_settings) as grouped:
        with pytest.raises(TenantExists):
            run(grouped.ledger.tenants.open(ADMIN, name, request()))
        assert grouped.ledger.groups.directory.group_of(name) == "home"
        assert stream_head(grouped.groups["blue"], name) is None


def test_a_master_key_rotation_rewraps_every_groups_keys(grouped: GroupedRuntime,
                                                         grouped_settings: Settings) -> None:
    names = {group: opened(grouped, group) for group in ("home", "blue")}
    writers = {group: token_of(grouped, "writer", name) for group, name in names.items()}
    for group, name in names.items():
        run(grouped.ledger.secrets.put(writers[group], name, "k", group, None, None,
                                       request()))
    switched = run(grouped.ledger.keys.rotate_master(ADMIN))
    assert switched.rewrapped >= 2
    grouped.close()
    with GroupedRuntime(grouped_settings) as again:  # only the new key file is left
        for group, name in names.items():
            reader = token_of(again, "reader", name)
            assert run(again.ledger.reads.value(reader, name, "k", request())).value == group


def _write_in_both(runtime: GroupedRuntime, writes: int) -> dict[str, str]:
    names = {group: opened(runtime, group) for group in ("home", "blue")}
    for index in range(writes):
        for name in names.values():
            run(runtime.ledger.secrets.put(ADMIN, name, f"k{index}", index, None, None,
                                           request()))
    return names


def _all_changes(runtime: GroupedRuntime, after: str, limit: int) -> list[tuple[str, int]]:
    seen: list[tuple[str, int]] = []
    while True:
        page = run(runtime.ledger.changes.page(ADMIN, None, after=after, limit=limit))
        seen += [(row.tenant, row.stream_version) for row in page.items]
        if not page.items:
            return seen
        after = page.cursor_text


def test_the_feed_of_every_tenant_merges_the_groups_each_change_once_in_its_order(
        grouped: GroupedRuntime) -> None:
    names = _write_in_both(grouped, 5)
    for limit in (1, 3, 100):
        seen = _all_changes(grouped, "0", limit)
        assert len(seen) == len(set(seen)) == 12  # each tenant: opened, 5 writes
        for name in names.values():
            versions = [version for tenant, version in seen if tenant == name]
            assert versions == sorted(versions) == list(range(1, 7))


def test_each_change_of_the_merged_feed_carries_the_cursor_that_resumes_after_it(
        grouped: GroupedRuntime) -> None:
    _write_in_both(grouped, 2)
    page = run(grouped.ledger.changes.page(ADMIN, None, limit=100))
    assert page.ids is not None and len(page.ids) == len(page.items) == 6
    for index, cursor in enumerate(page.ids):
        rest = run(grouped.ledger.changes.page(ADMIN, None, after=cursor, limit=100))
        assert rest.items == page.items[index + 1:]


def test_the_merged_feed_from_now_waits_for_a_change_in_any_group(
        grouped: GroupedRuntime) -> None:
    names = _write_in_both(grouped, 1)
    now = run(grouped.ledger.changes.page(ADMIN, None, after="now"))
    assert now.items == []

    async def wait_and_write() -> Any:
        waiting = asyncio.ensure_future(grouped.ledger.changes.page(
            ADMIN, None, after=now.cursor_text, wait=10))
        await asyncio.sleep(0.3)
        await grouped.ledger.secrets.put(ADMIN, names["blue"], "late", 1, None, None,
                                         request())
        return await waiting

    page = run(wait_and_write())
    assert [(row.tenant, row.key) for row in page.items] == [(names["blue"], "late")]


@pytest.mark.parametrize("cursor", ["5", "home:1,nope:2", "home:x", "home:1" * 100])
def test_a_cursor_the_merged_feed_did_not_issue_is_refused(grouped: GroupedRuntime,
                                                           cursor: str) -> None:
    with pytest.raises(InvalidRequest):
        run(grouped.ledger.changes.page(ADMIN, None, after=cursor))


def test_two_groups_on_the_same_storage_are_refused(grouped_settings: Settings) -> None:
    same = grouped_settings.model_copy(update={"groups": {"blue": GroupStore(
        database_schema=grouped_settings.database_schema)}})
    with pytest.raises(InvalidRequest, match="stored where home is"):
        group_settings(same)


def test_groups_need_postgresql(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequest, match="PostgreSQL"):
        group_settings(Settings(data_dir=tmp_path, groups={
            "blue": GroupStore(database_schema="blue")}))


@given(st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=8, unique=True),
       st.text(min_size=1, max_size=20))
def test_placement_is_stable_and_a_new_group_takes_tenants_only_for_itself(
        groups: list[str], tenant: str) -> None:
    before = placement(tenant, groups)
    assert placement(tenant, list(reversed(groups))) == before
    after = placement(tenant, [*groups, "new"])
    assert after in (before, "new")
