"""Roles: what each token may do, and tenant isolation."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.e2e.helpers import (
    Server,
    assert_problem,
    create_tenant,
    get_json,
    issue_token,
    put_value,
    secret_path,
    unique,
)


def test_reader_can_read_values(writer: httpx.Client, reader: httpx.Client,
                                tenant: str) -> None:
    put_value(writer, tenant, "k", "v1")
    put_value(writer, tenant, "k", "v2")
    assert get_json(reader, secret_path(tenant, "k"))["value"] == "v2"
    assert get_json(reader, secret_path(tenant, "k"), version=1)["value"] == "v1"
    assert [i["key"] for i in get_json(reader, f"/v1/tenants/{tenant}/secrets")["items"]] == ["k"]
    assert get_json(reader, secret_path(tenant, "k", "/versions"))["current_version"] == 2


def test_reader_cannot_write(writer: httpx.Client, reader: httpx.Client, tenant: str) -> None:
    put_value(writer, tenant, "k", "v1")
    attempts = [
        reader.put(secret_path(tenant, "k"), json={"value": "x"}),
        reader.put(secret_path(tenant, "new"), json={"value": "x"}),
        reader.delete(secret_path(tenant, "k")),
        reader.post(secret_path(tenant, "k", "/undelete")),
        reader.post(secret_path(tenant, "k", "/rollback"), json={"version": 1}),
        reader.post(secret_path(tenant, "k", "/destroy"), json={"versions": [1]}),
        reader.post(f"/v1/tenants/{tenant}/transactions",
                    json={"operations": [{"op": "set", "key": "t", "value": 1}]}),
    ]
    for response in attempts:
        assert_problem(response, 403, "forbidden")
    listing = get_json(writer, secret_path(tenant, "k", "/versions"))
    assert [(i["version"], i["state"]) for i in listing["items"]] == [(1, "active")]
    assert_problem(writer.get(secret_path(tenant, "new")), 404, "secret_not_found")


def test_auditor_never_reads_values(writer: httpx.Client, auditor: httpx.Client,
                                    tenant: str) -> None:
    first = put_value(writer, tenant, "k", "secret-value")
    for params in ({}, {"version": 1}, {"at": first["created_at"]}):
        response = auditor.get(secret_path(tenant, "k"), params=params)
        assert_problem(response, 403, "forbidden")
        assert "secret-value" not in response.text
    assert_problem(auditor.get(secret_path(tenant, "absent")), 403, "forbidden")


def test_auditor_reads_metadata_audit_and_verify(writer: httpx.Client, auditor: httpx.Client,
                                                 tenant: str) -> None:
    put_value(writer, tenant, "k", "secret-value")
    for path in (f"/v1/tenants/{tenant}/secrets", secret_path(tenant, "k", "/versions"),
                 f"/v1/tenants/{tenant}/audit", f"/v1/tenants/{tenant}/verify"):
        response = auditor.get(path)
        assert response.status_code == 200, (path, response.text)
        assert "secret-value" not in response.text
    assert get_json(auditor, f"/v1/tenants/{tenant}/verify")["ok"] is True


def test_auditor_cannot_write(auditor: httpx.Client, tenant: str) -> None:
    assert_problem(auditor.put(secret_path(tenant, "k"), json={"value": 1}), 403, "forbidden")
    assert_problem(auditor.post(f"/v1/tenants/{tenant}/transactions", json={
        "operations": [{"op": "set", "key": "t", "value": 1}]}), 403, "forbidden")


@pytest.mark.parametrize("role", ["reader", "writer"])
def test_value_roles_cannot_read_the_audit_trail(server: Server, admin: httpx.Client,
                                                 tenant: str, role: str) -> None:
    with server.client(issue_token(admin, tenant, role)["token"]) as client:
        assert_problem(client.get(f"/v1/tenants/{tenant}/audit"), 403, "forbidden")


@pytest.mark.parametrize("role", ["writer", "reader", "auditor"])
def test_tenant_tokens_cannot_administer(server: Server, admin: httpx.Client, tenant: str,
                                         role: str) -> None:
    with server.client(issue_token(admin, tenant, role)["token"]) as client:
        attempts = [
            client.post("/v1/tenants", json={"tenant": unique()}),
            client.get("/v1/tenants"),
            client.post(f"/v1/tenants/{tenant}/tokens", json={"role": "writer"}),
            client.post(f"/v1/tenants/{tenant}/keys/rotate"),
            client.delete(f"/v1/tenants/{tenant}", headers={"X-Confirm-Shred": tenant}),
        ]
        for response in attempts:
            assert_problem(response, 403, "forbidden")
    assert get_json(admin, f"/v1/tenants/{tenant}/verify")["ok"] is True
    assert len(get_json(admin, f"/v1/tenants/{tenant}/secrets")["items"]) == 0


def test_writer_cannot_revoke_tokens(server: Server, admin: httpx.Client, tenant: str) -> None:
    victim = issue_token(admin, tenant, "reader")
    with server.client(issue_token(admin, tenant, "writer")["token"]) as writer:
        response = writer.delete(f"/v1/tenants/{tenant}/tokens/{victim['token_id']}")
        assert_problem(response, 403, "forbidden")
    with server.client(victim["token"]) as reader:
        assert reader.get(f"/v1/tenants/{tenant}/secrets").status_code == 200


def _requests(tenant: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    return [
        ("GET", secret_path(tenant, "k"), None),
        ("PUT", secret_path(tenant, "k"), {"value": 1}),
        ("DELETE", secret_path(tenant, "k"), None),
        ("GET", secret_path(tenant, "k", "/versions"), None),
        ("GET", f"/v1/tenants/{tenant}/secrets", None),
        ("POST", f"/v1/tenants/{tenant}/transactions",
         {"operations": [{"op": "set", "key": "k", "value": 1}]}),
        ("GET", f"/v1/tenants/{tenant}/audit", None),
        ("GET", f"/v1/tenants/{tenant}/verify", None),
    ]


@pytest.mark.parametrize("role", ["writer", "reader", "auditor"])
def test_token_on_another_tenant_is_404_like_a_missing_tenant(server: Server,
                                                              admin: httpx.Client,
                                                              role: str) -> None:
    one, two = create_tenant(admin), create_tenant(admin)
    put_value(admin, one, "k", "one")
    put_value(admin, two, "k", "two")
    missing = unique("missing")
    tokens = {name: issue_token(admin, name, role)["token"] for name in (one, two)}
    for mine, theirs in ((one, two), (two, one)):
        with server.client(tokens[mine]) as client:
            for (method, path, body), (_, absent_path, _) in zip(
                    _requests(theirs), _requests(missing), strict=True):
                foreign = client.request(method, path, json=body)
                nowhere = client.request(method, absent_path, json=body)
                assert_problem(foreign, 404, "tenant_not_found")
                assert_problem(nowhere, 404, "tenant_not_found")
                assert foreign.json() == nowhere.json(), (method, path)
                assert foreign.headers.get("content-type") == nowhere.headers.get(
                    "content-type")
    assert get_json(admin, secret_path(one, "k"))["value"] == "one"
    assert get_json(admin, secret_path(two, "k"))["value"] == "two"


def test_admin_sees_unknown_tenant_as_404(admin: httpx.Client) -> None:
    missing = unique("missing")
    for method, path, body in _requests(missing):
        assert_problem(admin.request(method, path, json=body), 404, "tenant_not_found")
