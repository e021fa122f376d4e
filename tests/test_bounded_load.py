"""Bounded load, on both backends: the writer's queue is bounded by count and by bytes (a
caller beyond the bound is told 503 ``overloaded`` with ``Retry-After`` at once, and
nothing of its request is done), and work whose client has gone is never started."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import weakref
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import uvicorn

from secrets_ledger.adapters.sql.pruning import IdempotencyPruning
from secrets_ledger.api.http_guard import guarded_http
from secrets_ledger.api.rest.app import create_app
from secrets_ledger.api.rest.deps import CYCLE, client_gone_of
from secrets_ledger.api.server import YOUNG_COLLECTION_EVERY, steady_collector
from secrets_ledger.core.idempotency import RecentOutcomes
from secrets_ledger.core.principals import Principal
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.core.settings import Settings
from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.domain.errors import Overloaded, SecretNotFound, Unavailable
from secrets_ledger.domain.tenant import tenant_id_for
from secrets_ledger.domain.times import format_time, utc_now
from secrets_ledger.runtime import LedgerRuntime
from tests.support import blocking, held_writer, run

OPERATOR = Principal.operator("test")


@pytest.fixture
def small(settings: Settings) -> Iterator[LedgerRuntime]:
    """A ledger whose writer may hold two jobs, or 100 KB of requests."""
    limited = settings.model_copy(update={"max_queued_requests": 2,
                                          "max_queued_bytes": 100_000})
    with LedgerRuntime(limited) as runtime:
        blocking(runtime).open_tenant("acme", RequestContext("tok_admin", "setup"))
        yield runtime


def put(runtime: LedgerRuntime, key: str, size: int = 0) -> Any:
    return run(runtime.ledger.secrets.put(OPERATOR, "acme", key, "v", None, None,
                                          RequestInfo(f"put-{key}", size=size)))


def in_background(runtime: LedgerRuntime, *keys: str, size: int = 0) -> list[threading.Thread]:
    threads = [threading.Thread(target=put, args=(runtime, key, size)) for key in keys]
    for thread in threads:
        thread.start()
    return threads


def wait_queued(runtime: LedgerRuntime, jobs: int) -> None:
    for _ in range(500):
        if runtime.ledger.load.jobs == jobs:
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"{runtime.ledger.load.jobs} jobs queued, not {jobs}")


def test_a_full_queue_refuses_at_once_and_does_nothing(small: LedgerRuntime) -> None:
    with held_writer(small.ledger):
        waiting = in_background(small, "first", "second")
        wait_queued(small, 2)
        with pytest.raises(Overloaded):
            put(small, "third")
        assert small.ledger.load.shed == 1
    for thread in waiting:
        thread.join(10)
    ledger, ctx = blocking(small), RequestContext("tok_admin", "check")
    assert ledger.get_secret("acme", "second", ctx).value == "v"
    with pytest.raises(SecretNotFound):
        ledger.get_secret("acme", "third", ctx)


def test_the_queue_is_bounded_by_bytes_too(small: LedgerRuntime) -> None:
    with held_writer(small.ledger):
        waiting = in_background(small, "big", size=60_000)
        wait_queued(small, 1)
        with pytest.raises(Overloaded):
            put(small, "another big one", size=60_000)
        assert small.ledger.load.bytes == 60_000
    for thread in waiting:
        thread.join(10)
    assert small.ledger.load.bytes == 0


def test_a_full_queue_is_503_overloaded_with_retry_after(small: LedgerRuntime) -> None:
    app = create_app(small.ledger, small.projector.lag, 1000)
    token = blocking(small).issue_token("writer", "acme", RequestContext("tok_admin", "t")).token

    async def refused() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://ledger") as client:
            return await client.put("/v1/tenants/acme/secrets/k", json={"value": "v"},
                                    headers={"Authorization": f"Bearer {token}"})

    with held_writer(small.ledger):
        waiting = in_background(small, "first", "second")
        wait_queued(small, 2)
        response = asyncio.run(refused())
    for thread in waiting:
        thread.join(10)
    assert (response.status_code, response.headers.get("retry-after")) == (503, "1")
    assert response.json()["code"] == "overloaded"


def test_a_write_whose_client_has_gone_is_not_made(runtime: LedgerRuntime,
                                                   ctx: RequestContext) -> None:
    blocking(runtime).open_tenant("acme", ctx)
    with pytest.raises(Unavailable, match="went away"):
        run(runtime.ledger.secrets.put(OPERATOR, "acme", "k", "v", None, None,
                                       RequestInfo("gone", client_gone=lambda: True)))
    assert runtime.ledger.load.abandoned == 1
    with pytest.raises(SecretNotFound):
        blocking(runtime).get_secret("acme", "k", ctx)


def test_the_rest_api_asks_the_servers_request_cycle_whether_the_client_left() -> None:
    class Cycle:
        disconnected = False

    class OtherServers:
        pass

    cycle = Cycle()
    gone = client_gone_of({CYCLE: weakref.ref(cycle)})
    assert gone is not None and not gone()
    cycle.disconnected = True
    assert gone()
    del cycle
    assert gone()  # the server let go of it: the request is over
    other = OtherServers()
    assert client_gone_of({CYCLE: weakref.ref(other)}) is None


@pytest.fixture
def served(runtime: LedgerRuntime) -> Iterator[tuple[str, str]]:
    """The REST app served by uvicorn with ``serve``'s protocol, in this process (so that
    the test can look at what its requests leave behind): its URL and an admin token."""
    token = run(runtime.ledger.tokens.bootstrap(None))
    assert token is not None
    app = create_app(runtime.ledger, runtime.lag, 1000)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                            http=guarded_http(10.0, 30.0, 64))
    sock = config.bind_socket()
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", token
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_served_request_leaves_no_reference_cycle(served: tuple[str, str]) -> None:
    """Every request's objects are freed when it ends, not left to the cycle collector,
    whose full collections stop the whole process (under load they made the change feed's
    p99)."""
    url, token = served
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"},
                      timeout=10) as client:
        client.post("/v1/tenants", json={"tenant": "acme"}).raise_for_status()
        gc.collect()
        gc.disable()
        try:
            for n in range(20):  # one kept-alive connection: each request replaces the last
                client.put(f"/v1/tenants/acme/secrets/k{n}",
                           json={"value": "v"}).raise_for_status()
                client.get(f"/v1/tenants/acme/secrets/k{n}").raise_for_status()
            gc.set_debug(gc.DEBUG_SAVEALL)
            gc.collect()
            left = [type(o).__name__ for o in gc.garbage]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
            gc.enable()
    assert "RequestResponseCycle" not in left
    assert "BodyWriter" not in left


def test_recent_idempotent_outcomes_are_bounded_in_bytes() -> None:
    stored_lookups: list[str] = []

    def stored(tenant_id: Any, ctx: RequestContext) -> dict[str, Any] | None:
        stored_lookups.append(ctx.idempotency_key or "")
        return None

    recent = RecentOutcomes(stored, max_bytes=20_000)
    tenant_id = tenant_id_for("acme")
    for number in range(100):
        recent.batch = {(tenant_id, f"key-{number}"): ("hash", {"writes": ["x" * 1000]})}
        recent.settle()
    assert recent.bytes <= 20_000
    newest = RequestContext("tok", "r", "key-99", "hash")
    assert recent.first_outcome((tenant_id, "key-99"), newest) == {"writes": ["x" * 1000]}
    oldest = RequestContext("tok", "r", "key-0", "hash")
    assert recent.first_outcome((tenant_id, "key-0"), oldest) is None
    assert stored_lookups == ["key-0"]  # evicted: asked of the views


def test_idempotency_records_older_than_the_retention_are_pruned(
        runtime: LedgerRuntime, ctx: RequestContext) -> None:
    ledger = blocking(runtime)
    ledger.open_tenant("acme", ctx)
    for key in ("old", "new"):
        ledger.put_secret("acme", key, "v", None, None,
                          RequestContext("tok_admin", f"r-{key}", f"idem-{key}", f"h-{key}"))
    runtime.projector.catch_up()
    db = runtime.storage.db
    with db.transaction() as cur:
        cur.execute("UPDATE idempotency_records SET created_at = %s WHERE idempotency_key = %s",
                    (format_time(utc_now() - timedelta(hours=49)), "idem-old"))
    assert IdempotencyPruning(db, retention_hours=48).prune() == 1
    with db.read() as cur:
        cur.execute("SELECT idempotency_key FROM idempotency_records")
        assert [row[0] for row in cur.fetchall()] == ["idem-new"]


def test_a_server_prunes_idempotency_records(runtime: LedgerRuntime) -> None:
    assert any(isinstance(task, IdempotencyPruning) for task in runtime.storage.maintenance)


def test_serving_leaves_start_ups_objects_out_of_full_collections() -> None:
    """``serve`` freezes what start-up built (it lives until exit) before it serves, so
    that the full collections that stop the process traverse only what requests left."""
    threshold = gc.get_threshold()
    try:
        steady_collector()
        assert gc.get_freeze_count() > 10_000  # modules, classes, functions, the app
        assert gc.get_threshold()[0] == YOUNG_COLLECTION_EVERY
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)
