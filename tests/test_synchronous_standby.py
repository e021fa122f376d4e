"""A commit whose wait for the synchronous standby is cut short (PostgreSQL): the server
answers it with success and a warning, and from then on shows it, though the standby
may never get it and a failover would take it back. The ledger acknowledges no such
write, and serves nothing that rests on one, until the standby has it.

A PostgreSQL server of its own, told to wait for a standby that does not exist, holds
every commit in that wait; the test cuts the waits short (``pg_cancel_backend``, as an
operator's tool might), then lets the standby "answer" by naming none.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from secrets_ledger.core.principals import Principal
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.core.settings import Settings
from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.domain.tenant import tenant_id_for
from secrets_ledger.runtime import LedgerRuntime
from tests.pg_instance import PostgresInstance
from tests.support import Call, blocking, run

OPERATOR = Principal.operator("test")
SCHEMA = "ledger"
HELD = 1.0  # seconds a call must stay unanswered while the standby has not answered


class Pair:
    """The server, and the standby it waits for."""

    def __init__(self, server: PostgresInstance) -> None:
        self.url = server.url
        self.sql = server.sql

    def standby_away(self) -> None:
        """Names a standby that never answers; returns once commits wait for it. The
        reload reaches the server's processes one by one, and until the checkpointer has
        read it a commit waits for nobody: a write made then is rightly acknowledged."""
        self.sql("ALTER SYSTEM SET synchronous_standby_names = 'away'")
        self.sql("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 20.0
        while True:  # a commit of nothing but a log message, until one is held
            probe = Call(lambda: self.sql("SELECT pg_logical_emit_message(true, 'probe', '')"))
            if not probe.answered(0.2):
                self.cancel_waits()
                assert probe.answered(5.0), "the probe's wait for the standby went on"
                return
            assert time.monotonic() < deadline, "commits never waited for the standby"

    def standby_back(self) -> None:  # no standby to wait for: every wait ends
        self.sql("ALTER SYSTEM RESET synchronous_standby_names")
        self.sql("SELECT pg_reload_conf()")

    def cancel_waits(self) -> None:
        self.sql("SELECT pg_cancel_backend(pid) FROM pg_stat_activity"
                 " WHERE wait_event = 'SyncRep'")

    def cut_waits_short(self, until: Callable[[], bool], timeout: float = 20.0) -> None:
        """Cancels every commit waiting for the standby until ``until()`` holds."""
        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, "the commits never became visible"
            self.cancel_waits()
            time.sleep(0.05)

    def keep_cutting_waits_short(self, seconds: float) -> None:
        """Cancels every commit that waits for the standby, for ``seconds``."""
        deadline = time.monotonic() + seconds
        self.cut_waits_short(until=lambda: time.monotonic() >= deadline)


@pytest.fixture
def pair() -> Iterator[Pair]:
    with PostgresInstance() as instance:
        yield Pair(instance)


@pytest.fixture
def runtime(pair: Pair, tmp_path: Path) -> Iterator[LedgerRuntime]:
    settings = Settings(data_dir=tmp_path / "data", database_url=SecretStr(pair.url),
                        database_schema=SCHEMA)
    rt = LedgerRuntime(settings)
    try:
        blocking(rt).open_tenant("acme", RequestContext("tok_admin", "setup"))
        yield rt
    finally:
        pair.standby_back()  # nothing left waiting when the runtime closes
        rt.close()


def put(runtime: LedgerRuntime, value: str) -> Any:
    return run(runtime.ledger.secrets.put(OPERATOR, "acme", "k", value, None, None,
                                          RequestInfo(f"put-{value}")))


def audited_writes(pair: Pair) -> int:
    return int(pair.sql(f"SELECT count(*) FROM {SCHEMA}.audit_trail"
                        " WHERE key = 'k' AND action = 'write'")[0][0])


def second_write_on_the_primary_only(runtime: LedgerRuntime, pair: Pair) -> None:
    """Writes k again, unacknowledged: stored and projected on the server, its waits for
    the standby cut short, the standby still away."""
    pair.standby_away()
    Call(lambda: put(runtime, "two"))
    pair.cut_waits_short(until=lambda: audited_writes(pair) == 2)


def test_a_write_whose_standby_wait_was_cut_short_is_not_acknowledged_until_the_standby_has_it(
        runtime: LedgerRuntime, pair: Pair) -> None:
    put(runtime, "one")
    pair.standby_away()
    write = Call(lambda: put(runtime, "two"))
    pair.cut_waits_short(until=lambda: audited_writes(pair) == 2)  # stored and projected
    assert not write.answered(HELD), repr(write.error)
    pair.standby_back()
    assert write.answered(30) and write.error is None
    versions = pair.sql(f"SELECT count(*) FROM {SCHEMA}.secret_versions WHERE key = 'k'")
    assert versions == [(2,)]  # stored once, though asked after


def test_the_change_feed_serves_no_change_the_standby_may_not_have(
        runtime: LedgerRuntime, pair: Pair) -> None:
    put(runtime, "one")
    cursor = run(runtime.ledger.changes.page(OPERATOR, "acme", after="now")).cursor

    def page() -> Any:
        return run(runtime.ledger.changes.page(OPERATOR, "acme", after=str(cursor)))
    second_write_on_the_primary_only(runtime, pair)
    early = Call(page)
    pair.keep_cutting_waits_short(HELD)  # the feed's own waits for the standby too
    assert early.answer is None  # still waiting, or refused (503): never the change
    pair.standby_back()
    assert [(row.key, row.version) for row in page().items] == [("k", 2)]


def test_no_checkpoint_is_signed_over_leaves_the_standby_may_not_have(
        runtime: LedgerRuntime, pair: Pair) -> None:
    put(runtime, "one")
    tenant_id = str(tenant_id_for("acme"))
    second_write_on_the_primary_only(runtime, pair)
    (last,) = pair.sql(f"SELECT max(idx) FROM {SCHEMA}.log_leaves WHERE tenant_id = %s",
                       tenant_id)[0]

    def covering() -> Any:
        return runtime.ledger.checkpointer.covering(tenant_id, "acme", last)
    early = Call(covering)
    pair.keep_cutting_waits_short(HELD)  # the signer's own waits for the standby too
    assert early.answer is None  # still waiting, or refused: never a signed checkpoint
    pair.standby_back()
    assert covering().size == last + 1


def test_listings_show_no_write_the_standby_may_not_have(
        runtime: LedgerRuntime, pair: Pair) -> None:
    put(runtime, "one")

    def listed() -> Any:
        current, _ = run(runtime.ledger.reads.versions(OPERATOR, "acme", "k"))
        audit = run(runtime.ledger.history.audit(OPERATOR, "acme", key="k"))
        return current, [item.action for item in audit.items]
    second_write_on_the_primary_only(runtime, pair)
    early = Call(listed)
    pair.keep_cutting_waits_short(HELD)  # the listings' own waits for the standby too
    assert early.answer is None  # still waiting, or refused (503): never version 2
    pair.standby_back()
    assert listed() == (2, ["write", "write"])
