"""Reads from a standby (``LEDGER_READ_FROM_STANDBY``): a primary and a hot standby of
their own, the ledger on both hosts' URL. Queries of the views are read on the standby,
never behind what was committed before they began (read-your-writes), and a standby
that stays behind gets a 503, never a stale answer; writes and value reads stay on the
primary.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from secrets_ledger.core.principals import Principal
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.core.settings import Settings
from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.domain.errors import Unavailable
from secrets_ledger.grouped_runtime import group_settings
from secrets_ledger.runtime import LedgerRuntime
from tests.pg_instance import PostgresInstance, StandbyInstance
from tests.support import Call, blocking, run

OPERATOR = Principal.operator("test")
HELD = 1.0  # seconds a query must stay unanswered while the standby has not replayed


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[PostgresInstance, StandbyInstance]]:
    with PostgresInstance() as primary, StandbyInstance(primary) as standby:
        yield primary, standby


def open_runtime(servers: tuple[PostgresInstance, StandbyInstance], data_dir: Path,
                 timeout: float) -> LedgerRuntime:
    primary, standby = servers
    url = (f"postgresql://postgres@127.0.0.1:{primary.port},127.0.0.1:{standby.port}"
           "/postgres?target_session_attrs=read-write")
    settings = Settings(data_dir=data_dir, database_url=SecretStr(url),
                        database_schema=f"ledger_{data_dir.parent.name[-12:].lower()}",
                        read_from_standby=True, read_your_writes_timeout=timeout)
    rt = LedgerRuntime(settings)
    blocking(rt).open_tenant("acme", RequestContext("tok_admin", "setup"))
    return rt


@pytest.fixture
def runtime(servers: tuple[PostgresInstance, StandbyInstance],
            tmp_path: Path) -> Iterator[LedgerRuntime]:
    rt = open_runtime(servers, tmp_path / "data", timeout=10.0)
    try:
        yield rt
    finally:
        servers[1].resume()
        rt.close()


def put(runtime: LedgerRuntime, value: str) -> int:
    result = run(runtime.ledger.secrets.put(OPERATOR, "acme", "k", value, None, None,
                                            RequestInfo(f"put-{value}")))
    return int(result.version)


def current_version(runtime: LedgerRuntime) -> int:
    current, _ = run(runtime.ledger.reads.versions(OPERATOR, "acme", "k"))
    return int(current)


def test_a_query_waits_until_the_standby_has_replayed_what_was_committed_before_it(
        runtime: LedgerRuntime, servers: tuple[PostgresInstance, StandbyInstance]) -> None:
    put(runtime, "one")
    assert current_version(runtime) == 1
    servers[1].pause()
    assert put(runtime, "two") == 2  # acknowledged by the primary alone
    listing = Call(lambda: current_version(runtime))
    assert not listing.answered(HELD)  # on the standby, and never the stale version 1
    servers[1].resume()
    assert listing.answered(10) and listing.error is None
    assert listing.answer == 2


def test_value_reads_stay_on_the_primary(
        runtime: LedgerRuntime, servers: tuple[PostgresInstance, StandbyInstance]) -> None:
    put(runtime, "one")
    servers[1].pause()
    put(runtime, "two")
    read = run(runtime.ledger.reads.value(OPERATOR, "acme", "k", RequestInfo("get")))
    assert (read.version, read.value) == (2, "two")


def test_a_standby_that_stays_behind_is_a_503_not_a_stale_answer(
        servers: tuple[PostgresInstance, StandbyInstance], tmp_path: Path) -> None:
    rt = open_runtime(servers, tmp_path / "data", timeout=0.5)
    try:
        put(rt, "one")
        assert current_version(rt) == 1
        servers[1].pause()
        put(rt, "two")
        with pytest.raises(Unavailable):
            current_version(rt)
    finally:
        servers[1].resume()
        rt.close()
    # Nothing was changed by the refusal: resumed, the standby answers with version 2.


def test_a_group_reads_from_its_standby_only_when_configured() -> None:
    settings = Settings(database_url=SecretStr("postgresql://db-a/ledger"),
                        groups={"b": {"database_schema": "ledger_b",
                                      "read_from_standby": True},
                                "c": {"database_schema": "ledger_c"}})
    found = group_settings(settings)
    assert {name: group.read_from_standby for name, group in found.items()} == {
        "home": False, "b": True, "c": False}
