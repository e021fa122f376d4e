"""Tamper evidence of the stored events, and point-in-time reads (SPEC 5).

The tampering tests edit the event store's rows behind the ledger's back, as someone
with write access to the database would: ``stored_events`` in ``events.sqlite`` on
SQLite, ``<schema>.ledger_events`` on PostgreSQL.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import uuid
from collections.abc import Callable
from datetime import timedelta

import psycopg
import pytest

from secrets_ledger.core.ports import AuditFilter
from secrets_ledger.core.settings import Settings
from secrets_ledger.domain.chain import recompute_hash
from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.domain.errors import SecretDeleted, SecretNotFound
from secrets_ledger.domain.tenant import tenant_id_for
from secrets_ledger.domain.times import format_time, parse_time
from secrets_ledger.runtime import LedgerRuntime
from tests.conftest import PG_URL
from tests.support import Blocking, blocking
from tests.test_cli import CLI, cli_env

Edit = Callable[[bytes], bytes | None]
"""Turns a stored event's ``state`` into its tampered form; None deletes the row."""


def request(actor: str = "tok_test") -> RequestContext:
    return RequestContext(actor=actor, request_id=f"req-{uuid.uuid4().hex[:12]}")


def tamper(settings: Settings, tenant: str, version: int, edit: Edit) -> None:
    """Applies ``edit`` to the stored event ``version`` of the tenant's stream, in place."""
    tenant_id = tenant_id_for(tenant)
    if settings.database_url is None:
        conn = sqlite3.connect(settings.data_dir / "events.sqlite")
        try:
            where = "originator_id = ? AND originator_version = ?"
            key = (tenant_id.hex, version)
            row = conn.execute(f"SELECT state FROM stored_events WHERE {where}", key).fetchone()
            assert row is not None, "no such stored event"
            changed = edit(bytes(row[0]))
            if changed is None:
                conn.execute(f"DELETE FROM stored_events WHERE {where}", key)
            else:
                conn.execute(f"UPDATE stored_events SET state = ? WHERE {where}",
                             (changed, *key))
            conn.commit()
        finally:
            conn.close()
        return
    table = f'"{settings.database_schema}".ledger_events'
    with psycopg.connect(PG_URL, autocommit=True) as pg:
        where = "originator_id = %s AND originator_version = %s"
        found = pg.execute(f"SELECT state FROM {table} WHERE {where}",
                           (tenant_id, version)).fetchone()
        assert found is not None, "no such stored event"
        changed = edit(bytes(found[0]))
        if changed is None:
            pg.execute(f"DELETE FROM {table} WHERE {where}", (tenant_id, version))
        else:
            pg.execute(f"UPDATE {table} SET state = %s WHERE {where}",
                       (changed, tenant_id, version))


def edit_json(change: Callable[[dict[str, object]], None]) -> Edit:
    def edit(state: bytes) -> bytes:
        document = json.loads(state)
        change(document)
        return json.dumps(document, separators=(",", ":")).encode()

    return edit


def flip_ciphertext_char(document: dict[str, object]) -> None:
    writes = document["writes"]
    assert isinstance(writes, list)
    text = writes[0]["ciphertext"]
    middle = len(text) // 2
    writes[0]["ciphertext"] = text[:middle] + ("A" if text[middle] != "A" else "B") + text[
        middle + 1:]


def change_actor(document: dict[str, object]) -> None:
    document["actor"] = "tok_someone_else"


EVENTS_OF_ACME = 6  # opened, then five writes


@pytest.fixture
def streams(ledger: Blocking) -> tuple[str, str]:
    """Two tenants; "acme" has six events: opened (1) and five writes (2-6)."""
    ledger.open_tenant("acme", request())
    ledger.open_tenant("globex", request())
    for i in range(EVENTS_OF_ACME - 1):
        ledger.put_secret("acme", f"db/key-{i % 2}", {"n": i}, None, None, request())
        ledger.put_secret("globex", "db/key", {"n": i}, None, None, request())
    # Reads are recorded in the event store too; they must not upset verification.
    assert ledger.get_secret("acme", "db/key-0", request()).value == {"n": 4}
    return "acme", "globex"


def assert_broken_at(runtime: LedgerRuntime, position: int) -> None:
    ledger = blocking(runtime)
    check = ledger.verify("acme")
    assert check.ok is False
    assert check.first_bad_position == position
    assert check.reason
    assert check.as_dict()["ok"] is False
    assert check.as_dict()["first_bad_position"] == position
    untouched = ledger.verify("globex")
    assert untouched.ok, untouched.reason
    scan = blocking(runtime).verify_all()
    assert scan.ok is False
    broken = [c for c in scan.checks.values() if not c.ok]
    assert [(c.tenant_id, c.first_bad_position) for c in broken] == [
        (str(tenant_id_for("acme")), position)]


def test_an_untouched_store_verifies(runtime: LedgerRuntime, streams: tuple[str, str]) -> None:
    check = blocking(runtime).verify("acme")
    assert check.ok, check.reason
    assert check.events == EVENTS_OF_ACME
    assert len(check.head) == 64
    assert check.as_dict() == {"ok": True, "events": EVENTS_OF_ACME, "head": check.head}
    assert blocking(runtime).verify("globex").ok
    assert blocking(runtime).verify_all().ok


def test_one_changed_ciphertext_character_is_detected_at_its_position(
        runtime: LedgerRuntime, settings: Settings, streams: tuple[str, str]) -> None:
    tamper(settings, "acme", 3, edit_json(flip_ciphertext_char))
    assert_broken_at(runtime, 3)
    assert blocking(runtime).verify("acme").events == EVENTS_OF_ACME


def test_a_changed_actor_is_detected_at_its_position(
        runtime: LedgerRuntime, settings: Settings, streams: tuple[str, str]) -> None:
    tamper(settings, "acme", 3, edit_json(change_actor))
    assert_broken_at(runtime, 3)


def test_an_edited_last_event_is_detected(
        runtime: LedgerRuntime, settings: Settings, streams: tuple[str, str]) -> None:
    tamper(settings, "acme", EVENTS_OF_ACME, edit_json(change_actor))
    assert_broken_at(runtime, EVENTS_OF_ACME)


def test_an_edited_first_event_is_detected(
        runtime: LedgerRuntime, settings: Settings, streams: tuple[str, str]) -> None:
    def rename(document: dict[str, object]) -> None:
        document["name"] = "acme2"

    tamper(settings, "acme", 1, edit_json(rename))
    assert_broken_at(runtime, 1)


def test_a_deleted_event_is_detected_at_the_gap(
        runtime: LedgerRuntime, settings: Settings, streams: tuple[str, str]) -> None:
    tamper(settings, "acme", 3, lambda state: None)
    assert_broken_at(runtime, 3)


def test_an_event_edited_into_invalid_json_is_detected(
        runtime: LedgerRuntime, settings: Settings, streams: tuple[str, str]) -> None:
    tamper(settings, "acme", 4, lambda state: state[: len(state) // 2])
    assert_broken_at(runtime, 4)


def test_an_edited_event_given_a_fresh_hash_is_detected_at_the_next_link(
        runtime: LedgerRuntime, settings: Settings, streams: tuple[str, str]) -> None:
    """Re-hashing the edited event does not help: the next event links to the old hash."""
    events = runtime.storage.events
    stored = list(events.recorder.select_events(tenant_id_for("acme")))[2]
    assert stored.originator_version == 3

    def forge(state: bytes) -> bytes:
        document = json.loads(state)
        flip_ciphertext_char(document)
        forged = json.dumps(document, separators=(",", ":")).encode()
        event = events.mapper.to_domain_event(type(stored)(
            originator_id=stored.originator_id, originator_version=3,
            topic=stored.topic, state=forged))
        document["hash"] = recompute_hash(event)
        return json.dumps(document, separators=(",", ":")).encode()

    tamper(settings, "acme", 3, forge)
    assert_broken_at(runtime, 4)


@pytest.mark.parametrize("edit", [
    pytest.param(lambda state: state.replace(b'"timestamp"', b'"timestalp"', 1),
                 id="a field renamed by one byte"),
    pytest.param(edit_json(lambda document: document.pop("prev_hash")), id="a field removed"),
    pytest.param(edit_json(lambda document: document.update(hash=123)),
                 id="a field of another type"),
    pytest.param(edit_json(lambda document: document.update(writes="x")),
                 id="writes not a list"),
    pytest.param(lambda state: state[:-7], id="truncated bytes"),
])
def test_an_event_edited_into_another_shape_is_reported_not_raised(
        runtime: LedgerRuntime, settings: Settings, streams: tuple[str, str],
        edit: Edit) -> None:
    tamper(settings, "acme", 3, edit)
    assert_broken_at(runtime, 3)


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=cli_env(settings), capture_output=True,
                          text=True, timeout=120, check=False)


def test_the_cli_names_a_damaged_event_in_one_line_and_replay_refuses_it(
        runtime: LedgerRuntime, settings: Settings, streams: tuple[str, str]) -> None:
    tamper(settings, "acme", 1, lambda state: state.replace(b'"timestamp"', b'"timestalp"', 1))
    verified = cli(settings, "verify")
    assert verified.returncode == 1
    assert "Traceback" not in verified.stderr
    [broken] = [line for line in verified.stdout.splitlines() if line.startswith("BROKEN")]
    assert str(tenant_id_for("acme")) in broken and "first bad position 1" in broken
    assert "wrong shape" in broken
    replayed = cli(settings, "replay")
    assert replayed.returncode == 2
    assert replayed.stderr.count("\n") == 1 and "cannot be projected" in replayed.stderr


# ---- point-in-time reads --------------------------------------------------------------------


def just_before(moment: str) -> str:
    return format_time(parse_time(moment) - timedelta(microseconds=1))


def audit_time(ledger: Blocking, tenant: str, action: str, key: str) -> str:
    items = ledger.audit(tenant, AuditFilter(key=key, action=action), limit=1000).items
    return items[-1].at


def test_a_read_at_a_time_returns_the_version_current_then(ledger: Blocking, tenant: str) -> None:
    key = "db/password"
    v1 = ledger.put_secret(tenant, key, "one", None, None, request())
    v2 = ledger.put_secret(tenant, key, "two", None, None, request())
    ledger.delete_secret(tenant, key, None, request())
    deleted_at = audit_time(ledger, tenant, "delete", key)
    ledger.undelete_secret(tenant, key, request())
    undeleted_at = audit_time(ledger, tenant, "undelete", key)
    v3 = ledger.put_secret(tenant, key, "three", None, None, request())
    assert v1.created_at < v2.created_at < deleted_at < undeleted_at < v3.created_at

    def read_at(at: str) -> tuple[int, object]:
        secret = ledger.get_secret(tenant, key, request(), at=at)
        return secret.version, secret.value

    with pytest.raises(SecretNotFound):
        ledger.get_secret(tenant, key, request(), at=just_before(v1.created_at))
    assert read_at(v1.created_at) == (1, "one")
    assert read_at(just_before(v2.created_at)) == (1, "one")
    assert read_at(v2.created_at) == (2, "two")
    assert read_at(just_before(deleted_at)) == (2, "two")
    for while_deleted in (deleted_at, just_before(undeleted_at)):
        with pytest.raises(SecretDeleted):
            ledger.get_secret(tenant, key, request(), at=while_deleted)
    assert read_at(undeleted_at) == (2, "two")
    assert read_at(just_before(v3.created_at)) == (2, "two")
    assert read_at(v3.created_at) == (3, "three")
    assert read_at(format_time(parse_time(v3.created_at) + timedelta(days=1))) == (3, "three")


def test_a_read_at_a_time_the_key_was_live_works_after_it_was_deleted(
        ledger: Blocking, tenant: str) -> None:
    """"410 if it was deleted then": a key deleted now still reads as it was before."""
    key = "db/password"
    v1 = ledger.put_secret(tenant, key, "one", None, None, request())
    ledger.delete_secret(tenant, key, None, request())
    deleted_at = audit_time(ledger, tenant, "delete", key)
    secret = ledger.get_secret(tenant, key, request(), at=just_before(deleted_at))
    assert (secret.version, secret.value) == (v1.version, "one")
    with pytest.raises(SecretDeleted):
        ledger.get_secret(tenant, key, request(), at=deleted_at)


def test_the_key_set_at_a_time_is_the_one_current_then(ledger: Blocking, tenant: str) -> None:
    a1 = ledger.put_secret(tenant, "a", 1, None, None, request())
    b1 = ledger.put_secret(tenant, "b", 1, None, None, request())
    a2 = ledger.put_secret(tenant, "a", 2, None, None, request())
    ledger.delete_secret(tenant, "b", None, request())
    b_deleted = audit_time(ledger, tenant, "delete", "b")
    c1 = ledger.put_secret(tenant, "c", 1, None, None, request())

    def keys_at(at: str) -> list[tuple[str, int]]:
        return [(k.key, k.version) for k in ledger.list_keys(tenant, at=at).items]

    assert keys_at(just_before(a1.created_at)) == []
    assert keys_at(a1.created_at) == [("a", 1)]
    assert keys_at(just_before(b1.created_at)) == [("a", 1)]
    assert keys_at(b1.created_at) == [("a", 1), ("b", 1)]
    assert keys_at(a2.created_at) == [("a", 2), ("b", 1)]
    assert keys_at(just_before(b_deleted)) == [("a", 2), ("b", 1)]
    assert keys_at(b_deleted) == [("a", 2)]
    assert keys_at(c1.created_at) == [("a", 2), ("c", 1)]
    assert [(k.key, k.version) for k in ledger.list_keys(tenant).items] == [("a", 2), ("c", 1)]
    # Paging through a point-in-time listing gives the same set.
    page = ledger.list_keys(tenant, limit=1, at=b1.created_at)
    assert [k.key for k in page.items] == ["a"]
    assert page.next_cursor is not None
    rest = ledger.list_keys(tenant, limit=1, cursor=page.next_cursor, at=b1.created_at)
    assert [k.key for k in rest.items] == ["b"]
