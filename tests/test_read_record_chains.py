"""Tamper evidence of the stored read records, on both backends: each writer chains the
records it stores, so that deleting, editing, reordering or unchaining a stored record is
reported by ``verify`` (one line, exit 1), as someone with write access to the database
would do it (``stored_events`` in ``events.sqlite``; ``<schema>.ledger_events``)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import uuid
from collections.abc import Callable

import httpx
import psycopg
import pytest

from secrets_ledger.api.rest.app import create_app
from secrets_ledger.core.settings import Settings
from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.runtime import LedgerRuntime
from tests.conftest import PG_URL
from tests.support import blocking
from tests.test_cli import CLI, cli_env

READS = 4
TOPIC = "%ValueReads.Recorded"


def request() -> RequestContext:
    return RequestContext("tok_test", f"req-{uuid.uuid4().hex[:12]}")


@pytest.fixture
def read_four_times(runtime: LedgerRuntime) -> None:
    """Four read records of acme; then one of globex (a tenant of its own)."""
    ledger = blocking(runtime)
    for tenant in ("acme", "globex"):
        ledger.open_tenant(tenant, request())
        ledger.put_secret(tenant, "k", "v", None, None, request())
    for _ in range(READS):  # one group commit each: one read record each
        assert ledger.get_secret("acme", "k", request()).value == "v"
    assert ledger.get_secret("globex", "k", request()).value == "v"


def tenant_verdict(runtime: LedgerRuntime, tenant: str) -> tuple[bool, str | None]:
    """What the tenant's own verify (the API's) says."""
    check = blocking(runtime).verify(tenant)
    return check.ok, check.reason


def records(settings: Settings) -> list[tuple[int, bytes]]:
    """The stored read records, (row id, state), in store order."""
    if settings.database_url is None:
        with sqlite3.connect(settings.data_dir / "events.sqlite") as conn:
            return [(int(row), bytes(state)) for row, state in conn.execute(
                "SELECT rowid, state FROM stored_events WHERE topic LIKE ? ORDER BY rowid",
                (TOPIC,))]
    table = f'"{settings.database_schema}".ledger_events'
    with psycopg.connect(PG_URL) as pg:
        return [(int(row), bytes(state)) for row, state in pg.execute(
            f"SELECT notification_id, state FROM {table} WHERE topic LIKE %s"
            " ORDER BY notification_id", (TOPIC,))]


def store(settings: Settings, row: int, state: bytes | None) -> None:
    """Writes ``state`` into the stored row (None: deletes it)."""
    if settings.database_url is None:
        with sqlite3.connect(settings.data_dir / "events.sqlite") as conn:
            if state is None:
                conn.execute("DELETE FROM stored_events WHERE rowid = ?", (row,))
            else:
                conn.execute("UPDATE stored_events SET state = ? WHERE rowid = ?", (state, row))
        return
    table = f'"{settings.database_schema}".ledger_events'
    with psycopg.connect(PG_URL, autocommit=True) as pg:
        if state is None:
            pg.execute(f"DELETE FROM {table} WHERE notification_id = %s", (row,))
        else:
            pg.execute(f"UPDATE {table} SET state = %s WHERE notification_id = %s", (state, row))


def edited(state: bytes, change: Callable[[dict[str, object]], None]) -> bytes:
    document = json.loads(state)
    change(document)
    return json.dumps(document, separators=(",", ":")).encode()


def verdict(runtime: LedgerRuntime) -> tuple[bool, str | None]:
    reads = blocking(runtime).verify_all().reads
    return reads.ok, reads.reason


@pytest.mark.usefixtures("read_four_times")
def test_untouched_read_records_verify(runtime: LedgerRuntime, settings: Settings) -> None:
    assert len(records(settings)) == READS + 1
    reads = blocking(runtime).verify_all().reads
    assert (reads.ok, reads.records, len(reads.heads)) == (True, READS + 1, 1)
    assert tenant_verdict(runtime, "acme") == (True, None)


@pytest.mark.usefixtures("read_four_times")
def test_a_deleted_read_record_is_detected(runtime: LedgerRuntime, settings: Settings) -> None:
    store(settings, records(settings)[1][0], None)
    assert verdict(runtime) == (False, "read record 2 of its chain is missing")
    ok, reason = tenant_verdict(runtime, "acme")
    assert not ok and reason is not None and "a read record before this one is missing" in reason
    assert tenant_verdict(runtime, "globex") == (True, None)  # not globex's reads


@pytest.mark.usefixtures("read_four_times")
def test_an_edited_request_id_is_detected(runtime: LedgerRuntime, settings: Settings) -> None:
    row, state = records(settings)[2]

    def forge(document: dict[str, object]) -> None:
        reads = document["reads"]
        assert isinstance(reads, list)
        reads[0]["request_id"] = "req-forged"

    store(settings, row, edited(state, forge))
    assert verdict(runtime) == (False, "the read record's content does not match its hash")
    ok, reason = tenant_verdict(runtime, "acme")
    assert not ok and reason is not None and "does not match its hash" in reason


@pytest.mark.usefixtures("read_four_times")
def test_two_reordered_read_records_are_detected(runtime: LedgerRuntime,
                                                 settings: Settings) -> None:
    (first, a), (second, b) = records(settings)[1:3]
    store(settings, first, b)
    store(settings, second, a)
    ok, reason = verdict(runtime)
    assert not ok and reason is not None and "missing" in reason


@pytest.mark.usefixtures("read_four_times")
def test_a_read_record_stripped_of_its_chain_is_detected(runtime: LedgerRuntime,
                                                          settings: Settings) -> None:
    row, state = records(settings)[3]

    def unchain(document: dict[str, object]) -> None:
        for name in ("chain", "sequence", "previous", "hash"):
            document.pop(name)

    store(settings, row, edited(state, unchain))
    assert verdict(runtime) == (False, "an unchained read record after the chains began")


@pytest.mark.usefixtures("read_four_times")
def test_the_cli_reports_a_damaged_read_record_in_one_line(settings: Settings) -> None:
    row, state = records(settings)[0]
    store(settings, row, state[: len(state) // 2])
    done = subprocess.run([*CLI, "verify"], env=cli_env(settings), capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    [line] = [line for line in done.stdout.splitlines() if "read records" in line]
    assert line.startswith("BROKEN") and "cannot be decoded" in line


@pytest.mark.usefixtures("read_four_times")
def test_the_api_verify_of_a_tenant_reports_its_damaged_read_records(
        runtime: LedgerRuntime, settings: Settings) -> None:
    store(settings, records(settings)[0][0], None)
    app = create_app(runtime.ledger, runtime.projector.lag, 1000)
    token = blocking(runtime).issue_token("auditor", "acme", request()).token

    async def verify() -> dict[str, object]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://ledger") as client:
            response = await client.get("/v1/tenants/acme/verify",
                                        headers={"Authorization": f"Bearer {token}"})
            answer: dict[str, object] = response.json()
            return answer

    body = asyncio.run(verify())
    assert body["ok"] is False
    assert isinstance(body["reason"], str)
    assert "a read record before this one is missing" in body["reason"]
