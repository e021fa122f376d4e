"""Reads from a standby over real HTTP: ``serve`` on a primary and its hot standby (their
multi-host URL, ``LEDGER_READ_FROM_STANDBY=true``). Listings are read on the standby and
never behind an acknowledged write: while the standby's replay is paused they are a 503,
not a stale page; value reads and writes go on, on the primary."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.helpers import (
    Server,
    assert_problem,
    create_tenant,
    get_json,
    list_all_keys,
    put_value,
    secret_path,
)
from tests.pg_instance import PostgresInstance, StandbyInstance


@pytest.fixture(scope="module")
def standby(tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[Server, StandbyInstance]]:
    root: Path = tmp_path_factory.mktemp("standby")
    (root / "data").mkdir()
    with PostgresInstance() as primary, StandbyInstance(primary) as replica:
        url = (f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{replica.port}"
               "/postgres?target_session_attrs=read-write")
        running = Server("postgres", root / "data", root / "serve.log",
                         schema=f"e2e_{uuid.uuid4().hex[:12]}",
                         extra_env={"LEDGER_DATABASE_URL": url,
                                    "LEDGER_READ_FROM_STANDBY": "true",
                                    "LEDGER_READ_YOUR_WRITES_TIMEOUT": "1"})
        try:
            running.start()
            yield running, replica
        finally:
            running.stop()


@pytest.fixture
def admin(standby: tuple[Server, StandbyInstance]) -> Iterator[httpx.Client]:
    server, _ = standby
    with httpx.Client(base_url=server.base_url, timeout=30.0,
                      headers={"Authorization": f"Bearer {server.admin_token}"}) as client:
        yield client


def keys(admin: httpx.Client, tenant: str) -> list[str]:
    return [item["key"] for item in list_all_keys(admin, tenant)]


def test_a_listing_behind_a_paused_standby_is_a_503_and_then_complete(
        standby: tuple[Server, StandbyInstance], admin: httpx.Client) -> None:
    _, replica = standby
    tenant = create_tenant(admin)
    put_value(admin, tenant, "first", "one")
    assert keys(admin, tenant) == ["first"]
    replica.pause()
    try:
        put_value(admin, tenant, "second", "two")  # acknowledged by the primary
        behind = admin.get(f"/v1/tenants/{tenant}/secrets")
        assert_problem(behind, 503, "unavailable")
        value = get_json(admin, secret_path(tenant, "second"))
        assert value["value"] == "two"  # value reads: on the primary, paused or not
    finally:
        replica.resume()
    assert keys(admin, tenant) == ["first", "second"]
