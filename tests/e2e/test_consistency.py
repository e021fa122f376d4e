"""Read-your-writes and concurrent clients over real HTTP."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx

from tests.e2e.helpers import (
    Server,
    assert_problem,
    audit_items,
    create_tenant,
    get_json,
    list_all_keys,
    secret_path,
    verify,
)

CLIENTS = 16
T = TypeVar("T")


def _in_threads(count: int, work: Callable[[int], T]) -> list[T]:
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(work, range(count)))


def test_read_your_writes(writer: httpx.Client, reader: httpx.Client, auditor: httpx.Client,
                          tenant: str) -> None:
    for i in range(30):
        key = f"ryw/{i % 7}"
        value = {"iteration": i, "nonce": uuid.uuid4().hex}
        written = writer.put(secret_path(tenant, key), json={"value": value})
        assert written.status_code in (200, 201), written.text
        version = written.json()["version"]
        got = get_json(reader, secret_path(tenant, key))
        assert (got["version"], got["value"]) == (version, value)
        listed = {item["key"]: item["version"] for item in list_all_keys(reader, tenant)}
        assert listed[key] == version
        versions = get_json(reader, secret_path(tenant, key, "/versions"))
        assert versions["current_version"] == version
        rows = audit_items(auditor, tenant, key=key, action="write")
        assert rows[-1]["version"] == version
        reads = audit_items(auditor, tenant, key=key, action="read")
        assert reads[-1]["version"] == version


def test_read_your_deletes(writer: httpx.Client, tenant: str) -> None:
    for i in range(10):
        key = f"gone/{i}"
        assert writer.put(secret_path(tenant, key), json={"value": i}).status_code == 201
        assert writer.delete(secret_path(tenant, key)).status_code == 204
        assert_problem(writer.get(secret_path(tenant, key)), 410, "secret_deleted")
        assert all(item["key"] != key for item in list_all_keys(writer, tenant))


def test_concurrent_clients_on_different_keys_all_succeed(server: Server,
                                                          writer_token: dict[str, Any],
                                                          auditor: httpx.Client,
                                                          tenant: str) -> None:
    per_client = 5
    barrier = threading.Barrier(CLIENTS)

    def work(n: int) -> list[tuple[str, list[int], int, int]]:
        done = []
        with server.client(writer_token["token"]) as client:
            barrier.wait()
            for j in range(per_client):
                key, value = f"client{n:02d}/key{j}", [n, j]
                response = client.put(secret_path(tenant, key), json={"value": value})
                done.append((key, value, response.status_code,
                             response.json().get("version", -1)))
        return done

    results = [r for batch in _in_threads(CLIENTS, work) for r in batch]
    assert all(status == 201 and version == 1 for _, _, status, version in results), results
    listed = {item["key"]: item["version"] for item in list_all_keys(auditor, tenant)}
    assert listed == {key: 1 for key, _, _, _ in results}
    assert len(listed) == CLIENTS * per_client
    assert len(audit_items(auditor, tenant, action="write")) == CLIENTS * per_client
    assert verify(auditor, tenant)["ok"] is True
    with server.client(writer_token["token"]) as client:
        for key, value, _, _ in results:
            assert get_json(client, secret_path(tenant, key))["value"] == value


def test_concurrent_clients_on_one_key_each_get_a_version(server: Server,
                                                          writer_token: dict[str, Any],
                                                          tenant: str) -> None:
    barrier = threading.Barrier(CLIENTS)

    def work(n: int) -> int:
        with server.client(writer_token["token"]) as client:
            barrier.wait()
            response = client.put(secret_path(tenant, "shared"), json={"value": n})
            assert response.status_code in (200, 201), response.text
            return int(response.json()["version"])

    versions = _in_threads(CLIENTS, work)
    assert sorted(versions) == list(range(1, CLIENTS + 1))


def test_racing_if_match_has_exactly_one_winner_per_version(server: Server,
                                                            writer_token: dict[str, Any],
                                                            tenant: str) -> None:
    rounds = 4
    with server.client(writer_token["token"]) as setup:
        assert setup.put(secret_path(tenant, "race"), json={"value": "start"}).status_code == 201
    barrier = threading.Barrier(CLIENTS)

    def work(n: int) -> list[tuple[int, int, Any]]:
        outcomes = []
        with server.client(writer_token["token"]) as client:
            for r in range(rounds):
                expected = 1 + r
                barrier.wait()
                response = client.put(secret_path(tenant, "race"),
                                      json={"value": f"round{r}-client{n}"},
                                      headers={"If-Match": f'"{expected}"'})
                body = response.json()
                outcomes.append((r, response.status_code,
                                 body.get("version") if response.status_code == 200
                                 else (body.get("code"), body.get("current_version"))))
                barrier.wait()  # the next round starts when every client has its answer
        return outcomes

    outcomes = [o for batch in _in_threads(CLIENTS, work) for o in batch]
    for r in range(rounds):
        this_round = [(status, detail) for rr, status, detail in outcomes if rr == r]
        winners = [detail for status, detail in this_round if status == 200]
        losers = [detail for status, detail in this_round if status != 200]
        assert winners == [r + 2], this_round
        assert losers == [("version_conflict", r + 2)] * (CLIENTS - 1), this_round
    with server.client(writer_token["token"]) as client:
        listing = get_json(client, secret_path(tenant, "race", "/versions"))
        assert [i["version"] for i in listing["items"]] == list(range(1, rounds + 2))


def test_concurrent_idempotent_retries_write_once(server: Server, writer_token: dict[str, Any],
                                                  tenant: str) -> None:
    barrier = threading.Barrier(CLIENTS)
    headers = {"Idempotency-Key": f"retry-{uuid.uuid4().hex}"}

    def work(n: int) -> tuple[int, dict[str, Any]]:
        with server.client(writer_token["token"]) as client:
            barrier.wait()
            response = client.put(secret_path(tenant, "once"), json={"value": "same"},
                                  headers=headers)
            return response.status_code, response.json()

    results = _in_threads(CLIENTS, work)
    assert {status for status, _ in results} == {201}, results
    assert all(body == results[0][1] for _, body in results)
    with server.client(writer_token["token"]) as client:
        listing = get_json(client, secret_path(tenant, "once", "/versions"))
        assert [i["version"] for i in listing["items"]] == [1]


def test_concurrent_tenants_stay_apart(server: Server, admin: httpx.Client) -> None:
    tenants = [create_tenant(admin) for _ in range(4)]

    def work(n: int) -> None:
        name = tenants[n % len(tenants)]
        with server.admin() as client:
            for j in range(4):
                response = client.put(secret_path(name, f"k{n:02d}-{j}"), json={"value": n})
                assert response.status_code == 201, response.text

    _in_threads(CLIENTS, work)
    for index, name in enumerate(tenants):
        keys = {item["key"] for item in list_all_keys(admin, name)}
        assert keys == {f"k{n:02d}-{j}" for n in range(CLIENTS) if n % len(tenants) == index
                        for j in range(4)}


def test_refused_requests_do_not_fail_concurrent_writes(server: Server,
                                                        writer_token: dict[str, Any],
                                                        tenant: str) -> None:
    """Writes that share a commit with refused ones are still stored and acknowledged."""
    barrier = threading.Barrier(CLIENTS)
    bad_bodies = [
        b'{"value": 1, "metadata": {"k": "\\ud800"}}',  # not encodable as UTF-8
        b'{"value": "\\ud800"}',
    ]

    def work(n: int) -> list[tuple[str, int]]:
        outcomes = []
        with server.client(writer_token["token"]) as client:
            barrier.wait()
            for j in range(4):
                if n % 2:
                    response = client.put(secret_path(tenant, f"bad{n}-{j}"),
                                          content=bad_bodies[j % 2],
                                          headers={"Content-Type": "application/json"})
                    outcomes.append(("bad", response.status_code))
                    conflict = client.put(secret_path(tenant, f"good{n - 1}-{j}"),
                                          json={"value": "late"}, headers={"If-Match": '"9"'})
                    outcomes.append(("conflict", conflict.status_code))
                else:
                    response = client.put(secret_path(tenant, f"good{n}-{j}"),
                                          json={"value": [n, j]})
                    outcomes.append(("good", response.status_code))
        return outcomes

    outcomes = [o for batch in _in_threads(CLIENTS, work) for o in batch]
    assert {status for kind, status in outcomes if kind == "good"} == {201}, outcomes
    assert {status for kind, status in outcomes if kind == "conflict"} == {412}, outcomes
    with server.client(writer_token["token"]) as client:
        keys = {item["key"] for item in list_all_keys(client, tenant)}
    assert keys == {f"good{n}-{j}" for n in range(0, CLIENTS, 2) for j in range(4)}
    assert all(400 <= status < 500 for kind, status in outcomes if kind == "bad"), outcomes
