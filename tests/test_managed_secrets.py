"""Managed secrets (the AWS façade's) in the core, on both backends: their values are
sealed like native ones and stored nowhere in plaintext, every read is recorded, the
history verifies and replays, a purge destroys what it ends, and native listings never
show them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from secrets_ledger.core.managed import Written
from secrets_ledger.core.managed_values import SecretRef
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.ports import AuditFilter
from secrets_ledger.core.principals import Principal
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.core.settings import Settings
from secrets_ledger.core.signing_keys import SigningKeys, aws_key_pair
from secrets_ledger.domain import managed
from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.domain.errors import (
    SecretDeleted,
    SecretNotFound,
    Unauthorized,
    VersionIdInUse,
)
from secrets_ledger.domain.managed import SecretMetadata
from secrets_ledger.domain.managed_events import TRACKED_VERSION_IDS
from secrets_ledger.domain.tenant import Tenant, tenant_id_for
from secrets_ledger.domain.times import utc_now
from secrets_ledger.projections.checksum import views_checksum
from secrets_ledger.projections.replay import replay
from secrets_ledger.projections.views import ALL_VIEWS, views_named
from secrets_ledger.runtime import LedgerRuntime
from tests.support import Blocking, run
from tests.test_encryption import assert_stored_nowhere, assert_stored_somewhere, new_marker

SPACE = "sm:us-east-1"
WHO = Principal.operator("tok_test")
NOTHING = SecretMetadata(None, None, None)


def request() -> RequestInfo:
    return RequestInfo(f"req-{uuid.uuid4().hex[:8]}")


def create(runtime: LedgerRuntime, name: str, value: str | bytes | None,
           client_id: str | None = None) -> Written:
    return run(runtime.ledger.managed.create(WHO, "acme", SPACE, name, NOTHING, value,
                                             client_id or uuid.uuid4().hex, request()))


def put(runtime: LedgerRuntime, name: str, value: str | bytes, client_id: str | None = None,
        labels: Sequence[str] = ("AWSCURRENT",)) -> Written:
    return run(runtime.ledger.managed.put(WHO, "acme", SPACE, SecretRef(name), value,
                                          client_id or uuid.uuid4().hex, labels, request()))


def read(runtime: LedgerRuntime, name: str, label: str | None = None) -> Any:
    found = run(runtime.ledger.managed_reads.value(WHO, "acme", SPACE, SecretRef(name), None,
                                                   label, request()))
    return found.value


def actions(ledger: Blocking, key: str) -> list[tuple[str, int | None]]:
    page = ledger.audit("acme", AuditFilter(key=key), limit=1000)
    return [(item.action, item.version) for item in page.items]


def test_managed_values_are_in_no_stored_byte(runtime: LedgerRuntime, ledger: Blocking,
                                              tenant: str, settings: Settings) -> None:
    text, binary = new_marker(), new_marker().encode() + b"\x00\xff"
    create(runtime, "text", text)
    create(runtime, "binary", binary)
    put(runtime, "text", text + "-2")
    assert read(runtime, "text") == text + "-2"
    assert read(runtime, "binary") == binary
    assert_stored_somewhere(settings, "sm:us-east-1:text")  # the search sees the ledger
    assert_stored_nowhere(settings, [text.encode(), (text + "-2").encode(), binary])


def test_each_value_read_is_recorded_in_the_audit_trail(runtime: LedgerRuntime,
                                                        ledger: Blocking, tenant: str) -> None:
    create(runtime, "db", "one")
    put(runtime, "db", "two")
    read(runtime, "db")
    read(runtime, "db", "AWSPREVIOUS")
    run(runtime.ledger.managed_reads.values(WHO, "acme", SPACE, [SecretRef("db")] * 3,
                                            request()))
    assert actions(ledger, "sm:us-east-1:db") == [
        ("metadata_updated", None), ("write", 1), ("write", 2), ("read", 2), ("read", 1),
        ("read", 2), ("read", 2), ("read", 2)]


def test_the_history_of_managed_secrets_verifies(runtime: LedgerRuntime, ledger: Blocking,
                                                 tenant: str) -> None:
    create(runtime, "db", "one")
    put(runtime, "db", "two", labels=["AWSPENDING"])
    run(runtime.ledger.managed.tag(WHO, "acme", SPACE, SecretRef("db"), [("team", "x")], [],
                                   request()))
    run(runtime.ledger.managed.delete(WHO, "acme", SPACE, SecretRef("db"), 7, False,
                                      request()))
    run(runtime.ledger.managed.restore(WHO, "acme", SPACE, SecretRef("db"), request()))
    run(runtime.ledger.managed.delete(WHO, "acme", SPACE, SecretRef("db"), None, True,
                                      request()))
    assert ledger.verify("acme").ok


def test_a_repeated_client_id_with_the_same_value_writes_nothing(
        runtime: LedgerRuntime, ledger: Blocking, tenant: str) -> None:
    create(runtime, "db", "one", client_id="c" * 32)
    first = put(runtime, "db", "two", client_id="d" * 32)
    again = put(runtime, "db", "two", client_id="d" * 32)
    assert again == first
    assert [a for a in actions(ledger, "sm:us-east-1:db") if a[0] == "write"] == [
        ("write", 1), ("write", 2)]


def test_a_client_id_used_for_another_value_is_refused(runtime: LedgerRuntime,
                                                       ledger: Blocking, tenant: str) -> None:
    create(runtime, "db", "one", client_id="c" * 32)
    with pytest.raises(VersionIdInUse):
        put(runtime, "db", "other", client_id="c" * 32)


def test_a_purge_destroys_every_version_and_frees_the_name(runtime: LedgerRuntime,
                                                           ledger: Blocking,
                                                           tenant: str) -> None:
    create(runtime, "db", "one")
    put(runtime, "db", "two")
    run(runtime.ledger.managed.delete(WHO, "acme", SPACE, SecretRef("db"), None, True,
                                      request()))
    with pytest.raises(SecretNotFound):
        read(runtime, "db")
    tenant_id, _ = runtime.ledger.door.tenant_row("acme")
    states = {version: state for version, _, _, state
              in runtime.ledger.door.views.versions(tenant_id, "sm:us-east-1:db")}
    assert states == {1: "destroyed", 2: "destroyed"}
    again = create(runtime, "db", "three")
    assert read(runtime, "db") == "three"
    assert ("write", 3) in actions(ledger, "sm:us-east-1:db")  # a new incarnation
    assert again.suffix  # its own ARN suffix
    assert ledger.verify("acme").ok


def test_a_secret_scheduled_for_deletion_is_not_read(runtime: LedgerRuntime,
                                                     ledger: Blocking, tenant: str) -> None:
    create(runtime, "db", "one")
    run(runtime.ledger.managed.delete(WHO, "acme", SPACE, SecretRef("db"), 7, False,
                                      request()))
    with pytest.raises(SecretDeleted):
        read(runtime, "db")
    run(runtime.ledger.managed.restore(WHO, "acme", SPACE, SecretRef("db"), request()))
    assert read(runtime, "db") == "one"


def test_native_listings_never_show_managed_secrets(runtime: LedgerRuntime, ledger: Blocking,
                                                    tenant: str, ctx: Any) -> None:
    create(runtime, "db", "one")
    ledger.put_secret("acme", "native", "v", None, None, ctx)
    assert [item.key for item in ledger.list_keys("acme").items] == ["native"]
    listed = run(runtime.ledger.managed_reads.listing(WHO, "acme", SPACE, True))
    assert [row.name for row in listed] == ["db"]


def test_a_replay_rebuilds_the_managed_views(runtime: LedgerRuntime, ledger: Blocking,
                                             tenant: str) -> None:
    create(runtime, "db", "one")
    put(runtime, "db", "two", labels=["AWSPENDING"])
    run(runtime.ledger.managed.tag(WHO, "acme", SPACE, SecretRef("db"), [("team", "x")], [],
                                   request()))
    create(runtime, "gone", "x")
    run(runtime.ledger.managed.delete(WHO, "acme", SPACE, SecretRef("gone"), None, True,
                                      request()))
    storage = runtime.storage
    runtime.ledger.door.await_views()  # the last event projected
    live = views_checksum(storage.view_store, ALL_VIEWS)
    assert replay(storage.view_store, storage.event_source, views_named("all")) == live
    assert read(runtime, "db") == "one"


def test_a_tenant_token_has_a_signing_key_that_survives_a_master_key_rotation(
        runtime: LedgerRuntime, ledger: Blocking, tenant: str) -> None:
    issued = run(runtime.ledger.tokens.issue(WHO, "writer", "acme", None, "", request()))
    key_id, secret = aws_key_pair(issued.token)
    found = run(runtime.ledger.signing_keys.of(key_id))
    assert (found.tenant, found.secret) == ("acme", secret.encode())
    run(runtime.ledger.keys.rotate_master(Principal.operator()))
    uncached = SigningKeys(runtime.ledger.door)  # read from the store again
    assert run(uncached.of(key_id)).secret == secret.encode()


def test_an_admin_token_has_no_signing_key(runtime: LedgerRuntime) -> None:
    issued = run(runtime.ledger.tokens.issue(WHO, "admin", None, None, "", request()))
    with pytest.raises(Unauthorized):
        run(runtime.ledger.signing_keys.of(aws_key_pair(issued.token)[0]))


def test_a_revoked_token_has_no_signing_key(runtime: LedgerRuntime, tenant: str) -> None:
    issued = run(runtime.ledger.tokens.issue(WHO, "reader", "acme", None, "", request()))
    run(runtime.ledger.tokens.revoke(WHO, "acme", issued.token_id, request()))
    with pytest.raises(Unauthorized):
        run(runtime.ledger.signing_keys.of(aws_key_pair(issued.token)[0]))


def test_the_signing_key_is_stored_only_wrapped(runtime: LedgerRuntime, tenant: str,
                                                settings: Settings) -> None:
    issued = run(runtime.ledger.tokens.issue(WHO, "writer", "acme", None, "", request()))
    assert_stored_nowhere(settings, [aws_key_pair(issued.token)[1].encode(),
                                     issued.token.encode()])


def end_window(runtime: LedgerRuntime, key: str) -> None:
    """A deletion scheduled to end a moment ago (as if its recovery window had passed)."""
    def ran_out(aggregate: Tenant | None, effects: Any, ctx: RequestContext
                ) -> tuple[Tenant, None]:
        assert aggregate is not None
        now = utc_now()
        managed.schedule_deletion(aggregate, key, now - timedelta(seconds=1), ctx, now)
        return aggregate, None

    run(runtime.ledger.door.command(WHO, UseCase.DELETE_SECRET, "acme", request(), ran_out))


def test_a_recovery_window_that_ran_out_is_gone_and_then_purged(
        runtime: LedgerRuntime, ledger: Blocking, tenant: str) -> None:
    create(runtime, "db", "one")
    create(runtime, "kept", "two")
    run(runtime.ledger.managed.delete(WHO, "acme", SPACE, SecretRef("kept"), 7, False,
                                      request()))
    assert run(runtime.ledger.purges.sweep()) == 0  # a window still running

    end_window(runtime, "sm:us-east-1:db")
    # Gone at once for every read and for its name, before any sweep.
    names = [row.name for row in run(runtime.ledger.managed_reads.listing(WHO, "acme", SPACE,
                                                                          True))]
    assert names == ["kept"]
    with pytest.raises(SecretNotFound):
        run(runtime.ledger.managed_reads.describe(WHO, "acme", SPACE, SecretRef("db")))
    assert run(runtime.ledger.purges.sweep()) == 1
    assert run(runtime.ledger.purges.sweep()) == 0
    assert actions(ledger, "sm:us-east-1:db")[-1] == ("destroy", 1)
    assert ledger.verify("acme").ok


def test_the_aggregate_remembers_a_bounded_number_of_version_ids(
        runtime: LedgerRuntime, ledger: Blocking, tenant: str) -> None:
    create(runtime, "db", "v0", client_id="first" + "0" * 27)
    put(runtime, "db", "pending", client_id="pending" + "0" * 25, labels=["AWSPENDING"])
    for n in range(TRACKED_VERSION_IDS + 20):
        put(runtime, "db", f"v{n + 1}", client_id=f"{n:032d}")
    aggregate = runtime.storage.streams.load(tenant_id_for("acme"))
    assert aggregate is not None
    ids = aggregate.managed["sm:us-east-1:db"]["ids"]
    assert len(ids) == TRACKED_VERSION_IDS
    assert "pending" + "0" * 25 in ids  # still labelled: still named
    assert "first" + "0" * 27 not in ids
    last = f"{TRACKED_VERSION_IDS + 19:032d}"
    assert put(runtime, "db", f"v{TRACKED_VERSION_IDS + 20}", client_id=last).client_id == last


def test_a_name_whose_window_ran_out_is_free_before_the_sweep(
        runtime: LedgerRuntime, ledger: Blocking, tenant: str) -> None:
    create(runtime, "db", "old")
    put(runtime, "db", "older")
    end_window(runtime, "sm:us-east-1:db")
    create(runtime, "db", "new")
    assert read(runtime, "db") == "new"
    assert actions(ledger, "sm:us-east-1:db")[-5:] == [
        ("destroy", 1), ("destroy", 2), ("metadata_updated", None), ("write", 3), ("read", 3)]
    assert run(runtime.ledger.purges.sweep()) == 0
    assert ledger.verify("acme").ok
