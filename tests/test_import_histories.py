"""Importing each key's versions (a source's history: AWS Secrets Manager's, Vault's), on
both backends: written in the source's order with their metadata, in one atomic save;
a second import writes nothing; a source that moved on adds only its new versions."""

from __future__ import annotations

import pytest

from secrets_ledger.core.principals import Principal
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.domain.errors import InvalidRequest
from secrets_ledger.runtime import LedgerRuntime
from tests.support import Blocking, run

IMPORTER = Principal.operator("cli:import:test")
CTX = RequestContext("tok_setup", "setup")
HISTORY = {"db/password": [("first", {"stage": "old"}), ("second", {"stage": "previous"}),
                           ("third", {"stage": "current"})],
           "api/key": [({"k": 1}, None)]}


def histories(runtime: LedgerRuntime, source: dict[str, list[tuple[object, object]]]
              ) -> list[tuple[str, int]]:
    written = run(runtime.ledger.imports.histories(IMPORTER, "acme", source,  # type: ignore[arg-type]
                                                   RequestInfo("req-import")))
    return [(w.key, w.version) for w in written]


@pytest.fixture
def acme(ledger: Blocking) -> Blocking:
    ledger.open_tenant("acme", CTX)
    return ledger


def test_every_version_is_written_in_the_sources_order_with_its_metadata(
        runtime: LedgerRuntime, acme: Blocking) -> None:
    assert sorted(histories(runtime, HISTORY)) == [
        ("api/key", 1), ("db/password", 1), ("db/password", 2), ("db/password", 3)]
    for version, (value, metadata) in enumerate(HISTORY["db/password"], start=1):
        got = acme.get_secret("acme", "db/password", CTX, version=version)
        assert (got.value, got.metadata) == (value, metadata)


def test_a_second_import_writes_nothing_and_the_dry_run_agrees(
        runtime: LedgerRuntime, acme: Blocking) -> None:
    histories(runtime, HISTORY)
    assert histories(runtime, HISTORY) == []
    diff = run(runtime.ledger.imports.history_diff(IMPORTER, "acme", HISTORY))
    assert diff.agrees and diff.pending == {}


def test_a_source_that_moved_on_adds_only_its_new_versions(
        runtime: LedgerRuntime, acme: Blocking) -> None:
    histories(runtime, HISTORY)
    moved = {**HISTORY, "db/password": [*HISTORY["db/password"], ("fourth", None)]}
    diff = run(runtime.ledger.imports.history_diff(IMPORTER, "acme", moved))
    assert diff.pending == {"db/password": 1} and diff.changed == [("db/password", 3)]
    assert histories(runtime, moved) == [("db/password", 4)]


def test_a_value_changed_in_the_tenant_gets_the_whole_history_after_it(
        runtime: LedgerRuntime, acme: Blocking) -> None:
    histories(runtime, HISTORY)
    acme.put_secret("acme", "db/password", "edited here", None, None, CTX)
    assert histories(runtime, HISTORY) == [("db/password", 5), ("db/password", 6),
                                           ("db/password", 7)]


def test_a_bad_version_anywhere_writes_nothing(runtime: LedgerRuntime, acme: Blocking) -> None:
    bad = {"db/password": [("fine", None), ("also fine", {"": "empty label"})]}
    for source in (bad, {"db/password": []}, {"bad key!": [("v", None)]}):
        with pytest.raises(InvalidRequest):
            histories(runtime, source)  # type: ignore[arg-type]
    assert acme.list_keys("acme").items == []
