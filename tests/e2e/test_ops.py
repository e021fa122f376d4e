"""Health, readiness, metrics; no secret ever reaches the server's log or files."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.helpers import Server, issue_token, put_value, secret_path


def test_healthz_is_200_without_auth(server: Server) -> None:
    response = httpx.get(f"{server.base_url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_200_with_lag(server: Server) -> None:
    response = httpx.get(f"{server.base_url}/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["lag"], int)
    assert body["lag"] >= 0


def test_metrics_is_prometheus_text(server: Server, admin: httpx.Client, tenant: str) -> None:
    put_value(admin, tenant, "k", 1)
    admin.get(secret_path(tenant, "absent"))
    response = httpx.get(f"{server.base_url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert "ledger_http_requests" in families
    samples = families["ledger_http_requests"].samples
    statuses = {s.labels.get("status") for s in samples if s.name.endswith("_total")}
    assert {"201", "404"} <= statuses
    routes = {s.labels.get("route") for s in samples}
    assert any(route and "{tenant}" in route for route in routes), routes
    names = set(families)
    assert any("duration" in n or "latency" in n for n in names), names
    assert any("events" in n for n in names), names
    assert any("lag" in n for n in names), names


def test_metrics_routes_are_templates_not_raw_paths(server: Server, admin: httpx.Client,
                                                    tenant: str) -> None:
    put_value(admin, tenant, "some/key", 1)
    text = httpx.get(f"{server.base_url}/metrics").text
    assert tenant not in text
    assert "some/key" not in text


def _marker_traffic(server: Server, admin: httpx.Client, tenant: str, marker: str) -> None:
    writer_token = issue_token(admin, tenant, "writer")
    with server.client(writer_token["token"]) as writer:
        put_value(writer, tenant, "plain", marker)
        put_value(writer, tenant, "nested", {"password": marker, "list": [marker]})
        writer.post(f"/v1/tenants/{tenant}/transactions", json={"operations": [
            {"op": "set", "key": "tx", "value": marker}]})
        put_value(writer, tenant, "plain", "other")
        writer.post(secret_path(tenant, "plain", "/rollback"), json={"version": 1})
        assert marker in writer.get(secret_path(tenant, "plain")).text
        # rejected requests that carry the marker
        writer.put(secret_path(tenant, "bad"), json={"value": marker, "metadata": {"a": 1}})
        writer.put(secret_path(tenant, "bad"), json={"value": marker, "unknown": marker})
        writer.put(secret_path(tenant, "bad"), json={"value": marker * 2000})
        writer.put(secret_path(tenant, "bad/"), json={"value": marker})
        writer.put(secret_path(tenant, "bad"), content=f'{{"value": "{marker}'.encode(),
                   headers={"Content-Type": "application/json"})
        writer.put(secret_path(tenant, "plain"), json={"value": marker},
                   headers={"If-Match": '"99"'})
        writer.post(f"/v1/tenants/{tenant}/transactions", json={"operations": [
            {"op": "set", "key": "a", "value": marker}, {"op": "set", "key": "a", "value": 1}]})


def test_secret_values_never_reach_the_server_log(server: Server, admin: httpx.Client,
                                                  tenant: str) -> None:
    marker = f"MARKER-{uuid.uuid4().hex}"
    _marker_traffic(server, admin, tenant, marker)
    server.restart()  # flushes and closes everything the process wrote
    log = server.log_text()
    assert "Uvicorn running" in log or "Started server process" in log
    assert marker not in log
    assert marker[7:] not in log


def test_tokens_never_reach_the_server_log(server: Server, admin: httpx.Client,
                                           tenant: str) -> None:
    issued = [issue_token(admin, tenant, role) for role in ("writer", "reader", "auditor")]
    for token in issued:
        with server.client(token["token"]) as client:
            client.get(f"/v1/tenants/{tenant}/secrets")
    with server.client("slt_garbage_token_value") as client:
        client.get(f"/v1/tenants/{tenant}/secrets")
    server.restart()
    log = server.log_text()
    for token in issued:
        assert token["token"] not in log
        assert token["token"].split("_", 2)[2] not in log  # slt_<id>_<secret>
    assert server.admin_token not in log
    assert "slt_garbage_token_value" not in log


def test_secret_values_never_reach_a_file_of_the_data_dir(server: Server, admin: httpx.Client,
                                                          tenant: str) -> None:
    marker = f"MARKER-{uuid.uuid4().hex}"
    _marker_traffic(server, admin, tenant, marker)
    server.restart()
    needle = marker.encode()
    for path in Path(server.data_dir).rglob("*"):
        if path.is_file():
            assert needle not in path.read_bytes(), path
