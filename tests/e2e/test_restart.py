"""Stopping the server with SIGTERM and starting it again on the same storage."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from tests.e2e.helpers import (
    Server,
    assert_problem,
    audit_items,
    create_tenant,
    get_json,
    issue_token,
    list_all_keys,
    put_value,
    secret_path,
    verify,
)


def test_sigterm_exits_cleanly(server: Server) -> None:
    assert server.restart() == 0
    assert httpx.get(f"{server.base_url}/healthz").status_code == 200


def test_everything_acknowledged_survives_a_restart(server: Server) -> None:
    with server.admin() as admin:
        tenant = create_tenant(admin)
        writer_token = issue_token(admin, tenant, "writer")
        revoked = issue_token(admin, tenant, "reader")
        assert admin.delete(
            f"/v1/tenants/{tenant}/tokens/{revoked['token_id']}").status_code == 204
        put_value(admin, tenant, "db/password", "first")
        put_value(admin, tenant, "db/password", "second")
        put_value(admin, tenant, "gone", "bye")
        assert admin.delete(secret_path(tenant, "gone")).status_code == 204
        tx = admin.post(f"/v1/tenants/{tenant}/transactions", json={"operations": [
            {"op": "set", "key": f"bulk/{i}", "value": i} for i in range(20)]})
        assert tx.status_code == 200, tx.text
        assert admin.post(f"/v1/tenants/{tenant}/keys/rotate").json() == {"key_version": 2}
        put_value(admin, tenant, "db/password", "third")
        assert admin.post(secret_path(tenant, "db/password", "/destroy"),
                          json={"versions": [1]}).status_code == 200
        keys = list_all_keys(admin, tenant)
        versions = get_json(admin, secret_path(tenant, "db/password", "/versions"))
        trail = audit_items(admin, tenant)
        chain = verify(admin, tenant)
        assert chain["ok"] is True

    server.restart()

    with server.admin() as admin:
        assert verify(admin, tenant) == chain
        assert list_all_keys(admin, tenant) == keys
        assert get_json(admin, secret_path(tenant, "db/password", "/versions")) == versions
        assert audit_items(admin, tenant)[: len(trail)] == trail
        assert get_json(admin, secret_path(tenant, "db/password"))["value"] == "third"
        assert get_json(admin, secret_path(tenant, "db/password"),
                        version=2)["value"] == "second"
        assert_problem(admin.get(secret_path(tenant, "db/password"), params={"version": 1}),
                       410, "version_destroyed")
        assert_problem(admin.get(secret_path(tenant, "gone")), 410, "secret_deleted")
        assert [get_json(admin, secret_path(tenant, f"bulk/{i}"))["value"]
                for i in range(20)] == list(range(20))
        assert tenant in {t["tenant"] for t in get_json(admin, "/v1/tenants")["items"]}
        assert admin.post(f"/v1/tenants/{tenant}/keys/rotate").json() == {"key_version": 3}
    with server.client(writer_token["token"]) as writer:
        put_value(writer, tenant, "db/password", "fourth", expect=200)
    with server.client(revoked["token"]) as reader:
        assert_problem(reader.get(f"/v1/tenants/{tenant}/secrets"), 401, "unauthorized")


def test_writes_acknowledged_around_sigterm_survive(server: Server) -> None:
    with server.admin() as admin:
        tenant = create_tenant(admin)
    acknowledged: list[tuple[str, int, Any]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def write(n: int) -> None:
        with server.admin() as client:
            for i in range(10_000):
                if stop.is_set():
                    return
                key, value = f"w{n}/k{i}", {"writer": n, "i": i}
                try:
                    response = client.put(secret_path(tenant, key), json={"value": value})
                except httpx.TransportError:
                    return  # the server went away: this write was never acknowledged
                if response.status_code == 201:
                    with lock:
                        acknowledged.append((key, response.json()["version"], value))
                elif response.status_code < 500:
                    raise AssertionError(response.text)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    try:
        while len(acknowledged) < 30 and any(t.is_alive() for t in threads):
            time.sleep(0.01)
        server.stop()
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        if server.proc is None:
            server.start()
    assert len(acknowledged) >= 30
    with server.admin() as admin:
        assert verify(admin, tenant)["ok"] is True
        present = {item["key"]: item["version"] for item in list_all_keys(admin, tenant)}
        for key, version, value in acknowledged:
            assert present.get(key) == version, key
            assert get_json(admin, secret_path(tenant, key))["value"] == value
