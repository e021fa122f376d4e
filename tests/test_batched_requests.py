"""Many requests answered in one group-commit batch (REST routes -> the core's
``BatchWriter``): the writer reads the tokens (PUT) and the values (GET) of a whole batch
in one statement each, on both backends, so every request must still get exactly its own
answer, with its own token judged, in the order of the separate steps, and every value
read on file.

The requests go through the ASGI app concurrently on one event loop; the writer is held
in its first batch until all of them are queued, so the rest form one batch.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from secrets_ledger.api.rest.app import create_app
from secrets_ledger.core.ports import AuditFilter
from secrets_ledger.core.reads import READ_NOT_RECORDED
from secrets_ledger.domain.changes import Change, DeleteKey, RequestContext
from secrets_ledger.runtime import LedgerRuntime
from tests.support import blocking

ADMIN_CTX = RequestContext(actor="tok_admin", request_id="setup")
VALUES = {"k0": "zero", "k1": {"n": 1}, "k2": [2, "two"], "k3": None, "gone": "deleted"}


@dataclass
class World:
    runtime: LedgerRuntime
    app: Any
    tokens: dict[str, str]  # name -> bearer token


@pytest.fixture
def world(runtime: LedgerRuntime) -> World:
    ledger = blocking(runtime)
    tokens = {"admin": ledger.issue_token("admin", None, ADMIN_CTX).token}
    for tenant in ("acme", "beta"):
        ledger.open_tenant(tenant, ADMIN_CTX)
        for role in ("writer", "reader", "auditor"):
            tokens[f"{tenant}-{role}"] = ledger.issue_token(role, tenant, ADMIN_CTX).token
    revoked = ledger.issue_token("reader", "acme", ADMIN_CTX)
    ledger.revoke_token("acme", revoked.token_id, ADMIN_CTX)
    tokens["acme-revoked"] = revoked.token
    tokens["nobody"] = "slt_unknown_" + "x" * 40
    for key, value in VALUES.items():
        ledger.put_secret("acme", key, value, None, None, ADMIN_CTX)
    deleted: Change = DeleteKey("gone")
    ledger.write_secrets("acme", [deleted], {}, ADMIN_CTX)
    return World(runtime, create_app(runtime.ledger, runtime.projector.lag, 1000), tokens)


class HeldWriter:
    """Holds the writer inside its first batch read of ``what`` ("values" or "tokens")
    until released, recording the size of every such read."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, runtime: LedgerRuntime,
                 what: str) -> None:
        self.sizes: list[int] = []
        self.release = threading.Event()
        writer = runtime.ledger.door.writer
        port, name = ((writer.lookups, "value_rows") if what == "values"
                      else (writer.tokens, "by_hashes"))
        original: Callable[[Sequence[Any]], Any] = getattr(port, name)

        def held(lookups: Sequence[Any]) -> Any:
            self.sizes.append(len(lookups))
            self.release.wait(timeout=30)
            return original(lookups)

        monkeypatch.setattr(port, name, held)


async def _concurrently(world: World, held: HeldWriter,
                        requests: list[tuple[str, str, str, Any]]) -> list[httpx.Response]:
    """Sends (method, token name, path, json) requests at once; releases the writer once
    every one of them is waiting."""
    transport = httpx.ASGITransport(app=world.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ledger") as client:
        async def send(method: str, token: str, path: str, body: Any) -> httpx.Response:
            return await client.request(
                method, path, json=body,
                headers={"Authorization": f"Bearer {world.tokens[token]}"})

        sent = asyncio.gather(*(send(*request) for request in requests))
        await asyncio.sleep(0.3)  # every request is queued behind the held batch
        held.release.set()
        return list(await sent)


def _secret(tenant: str, key: str) -> str:
    return f"/v1/tenants/{tenant}/secrets/{key}"


# (token, tenant, key) -> (status, value or problem code)
READS: list[tuple[str, str, str, int, Any]] = [
    ("acme-reader", "acme", "k0", 200, "zero"),
    ("acme-writer", "acme", "k1", 200, {"n": 1}),
    ("admin", "acme", "k2", 200, [2, "two"]),
    ("acme-reader", "acme", "k3", 200, None),
    ("acme-reader", "acme", "k0", 200, "zero"),
    ("acme-auditor", "acme", "k0", 403, "forbidden"),
    ("beta-reader", "acme", "k0", 404, "tenant_not_found"),
    ("acme-revoked", "acme", "k0", 401, "unauthorized"),
    ("nobody", "acme", "k0", 401, "unauthorized"),
    ("acme-reader", "acme", "missing", 404, "secret_not_found"),
    ("acme-reader", "acme", "gone", 410, "secret_deleted"),
    ("beta-reader", "beta", "k0", 404, "secret_not_found"),
    ("admin", "nowhere", "k0", 404, "tenant_not_found"),
]


def test_reads_in_one_batch_each_get_their_own_answer(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    held = HeldWriter(monkeypatch, world.runtime, "values")
    requests = [("GET", token, _secret(tenant, key), None)
                for token, tenant, key, _, _ in READS]
    responses = asyncio.run(_concurrently(world, held, requests))
    for (token, tenant, key, status, expected), response in zip(READS, responses, strict=True):
        assert response.status_code == status, (token, tenant, key, response.text)
        if status == 200:
            assert response.json()["value"] == expected
            assert response.json()["key"] == key
        else:
            assert response.json()["code"] == expected
    assert len(held.sizes) <= 2  # the first one alone at most, the rest together


def test_every_value_read_in_a_batch_is_on_file(world: World,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    held = HeldWriter(monkeypatch, world.runtime, "values")
    requests = [("GET", "acme-reader", _secret("acme", f"k{n % 3}"), None) for n in range(12)]
    responses = asyncio.run(_concurrently(world, held, requests))
    assert [r.status_code for r in responses] == [200] * 12
    by_key = {}
    for key in ("k0", "k1", "k2"):
        where = AuditFilter(key=key, action="read")
        items = blocking(world.runtime).audit("acme", where, limit=100).items
        by_key[key] = sorted(item.request_id for item in items)
    for key in ("k0", "k1", "k2"):
        answered = sorted(r.headers["X-Request-Id"] for r in responses
                          if r.json()["key"] == key)
        assert by_key[key] == answered


def test_a_read_whose_record_cannot_be_stored_returns_no_value_and_the_writer_goes_on(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    streams = world.runtime.ledger.door.writer.streams

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(streams, "save", broken)
    refused = asyncio.run(_get_once(world, "k0"))
    assert refused.status_code == 503
    assert refused.json()["code"] == "unavailable"
    assert refused.json()["detail"] == READ_NOT_RECORDED  # as the route says it
    assert "zero" not in refused.text
    monkeypatch.undo()
    answered = asyncio.run(_get_once(world, "k0"))
    assert answered.json()["value"] == "zero"
    where = AuditFilter(key="k0", action="read")  # the refused read is not on file
    assert [item.request_id for item in blocking(world.runtime).audit("acme", where).items] == [
        answered.headers["X-Request-Id"]]


async def _get_once(world: World, key: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=world.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://ledger") as client:
        return await client.get(_secret("acme", key),
                                headers={"Authorization": f"Bearer {world.tokens['acme-reader']}"})


# (token, tenant, key, body) -> (status, problem code or None)
WRITES: list[tuple[str, str, str, Any, int, str | None]] = [
    ("acme-writer", "acme", "w0", {"value": "a"}, 201, None),
    ("admin", "acme", "w1", {"value": 1, "metadata": {"o": "x"}}, 201, None),
    ("acme-reader", "acme", "w2", {"value": "no"}, 403, "forbidden"),
    ("beta-writer", "acme", "w3", {"value": "no"}, 404, "tenant_not_found"),
    ("acme-revoked", "acme", "w4", {"value": "no"}, 401, "unauthorized"),
    ("nobody", "acme", "w5", {"value": "no"}, 401, "unauthorized"),
    # the token is judged before the write's own checks, as in the separate steps
    ("nobody", "acme", "w6", {"value": "no", "metadata": {"_type_": "a", "_data_": "b"}},
     401, "unauthorized"),
    ("acme-writer", "acme", "w7", {"value": "no", "metadata": {"_type_": "a", "_data_": "b"}},
     400, "invalid_request"),
    ("beta-writer", "beta", "w0", {"value": "beta's"}, 201, None),
    ("admin", "nowhere", "w0", {"value": "no"}, 404, "tenant_not_found"),
]


def test_writes_in_one_batch_each_have_their_own_token_judged(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    held = HeldWriter(monkeypatch, world.runtime, "tokens")
    requests = [("PUT", token, _secret(tenant, key), body)
                for token, tenant, key, body, _, _ in WRITES]
    responses = asyncio.run(_concurrently(world, held, requests))
    for (token, tenant, key, _, status, code), response in zip(WRITES, responses, strict=True):
        assert response.status_code == status, (token, tenant, key, response.text)
        if code is not None:
            assert response.json()["code"] == code
    assert len(held.sizes) <= 2  # the first one alone at most, the rest together
    ledger = blocking(world.runtime)
    assert ledger.get_secret("acme", "w0", ADMIN_CTX).value == "a"
    assert ledger.get_secret("acme", "w1", ADMIN_CTX).metadata == {"o": "x"}
    assert ledger.get_secret("beta", "w0", ADMIN_CTX).value == "beta's"
    keys = {item.key for item in ledger.list_keys("acme", limit=100).items}
    assert keys.isdisjoint({"w2", "w3", "w4", "w5", "w6", "w7"})  # refused: nothing written


def test_writes_of_one_key_in_one_batch_are_versions_in_a_row(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    held = HeldWriter(monkeypatch, world.runtime, "tokens")
    requests = [("PUT", "acme-writer", _secret("acme", "same"), {"value": n}) for n in range(8)]
    responses = asyncio.run(_concurrently(world, held, requests))
    versions = {r.json()["version"]: n for n, r in enumerate(responses)}
    assert sorted(versions) == list(range(1, 9))
    assert sorted(r.status_code for r in responses) == [200] * 7 + [201]
    last = blocking(world.runtime).get_secret("acme", "same", ADMIN_CTX)
    assert (last.version, last.value) == (8, versions[8])
