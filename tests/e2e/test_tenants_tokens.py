"""Tenants and tokens (admin), and authentication failures."""

from __future__ import annotations

import time
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


def test_create_tenant_returns_201_with_created_at(admin: httpx.Client) -> None:
    name = unique()
    response = admin.post("/v1/tenants", json={"tenant": name})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["tenant"] == name
    assert isinstance(body["created_at"], str) and body["created_at"].endswith("Z")


def test_create_existing_tenant_is_409_tenant_exists(admin: httpx.Client) -> None:
    name = create_tenant(admin)
    assert_problem(admin.post("/v1/tenants", json={"tenant": name}), 409, "tenant_exists")


@pytest.mark.parametrize("name", ["Acme", "-acme", "", "a" * 64, "ac_me", "ac me"])
def test_create_tenant_with_bad_name_is_400(admin: httpx.Client, name: str) -> None:
    assert_problem(admin.post("/v1/tenants", json={"tenant": name}), 400, "invalid_request")


def test_list_tenants_includes_created_ones(admin: httpx.Client) -> None:
    names = {create_tenant(admin) for _ in range(3)}
    listed = get_json(admin, "/v1/tenants")["items"]
    found = {item["tenant"]: item for item in listed if item["tenant"] in names}
    assert set(found) == names
    assert all(isinstance(item["created_at"], str) for item in found.values())


@pytest.mark.parametrize("role", ["writer", "reader", "auditor"])
def test_create_token_for_each_role(admin: httpx.Client, tenant: str, role: str) -> None:
    response = admin.post(f"/v1/tenants/{tenant}/tokens",
                          json={"role": role, "description": "e2e"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert isinstance(body["token"], str) and len(body["token"]) >= 20
    assert isinstance(body["token_id"], str) and body["token_id"]
    assert body["token_id"] != body["token"]
    assert body["role"] == role
    assert body["tenant"] == tenant
    assert body["expires_at"] is None


def test_create_token_with_ttl_sets_expires_at(admin: httpx.Client, tenant: str) -> None:
    body = issue_token(admin, tenant, "reader", ttl_seconds=3600)
    assert isinstance(body["expires_at"], str) and body["expires_at"].endswith("Z")


def test_created_token_works_for_its_role(server: Server, admin: httpx.Client,
                                          tenant: str) -> None:
    issued = issue_token(admin, tenant, "writer")
    with server.client(issued["token"]) as writer:
        put_value(writer, tenant, "db/password", "s3cret", expect=201)


def test_admin_tokens_cannot_be_created_over_http(admin: httpx.Client, tenant: str) -> None:
    response = admin.post(f"/v1/tenants/{tenant}/tokens", json={"role": "admin"})
    assert_problem(response, 400, "invalid_request")


def test_create_token_for_unknown_tenant_is_404(admin: httpx.Client) -> None:
    response = admin.post(f"/v1/tenants/{unique()}/tokens", json={"role": "reader"})
    assert_problem(response, 404, "tenant_not_found")


def test_revoked_token_is_refused_at_once(server: Server, admin: httpx.Client,
                                          tenant: str) -> None:
    issued = issue_token(admin, tenant, "writer")
    with server.client(issued["token"]) as writer:
        put_value(writer, tenant, "k", 1, expect=201)
        revoked = admin.delete(f"/v1/tenants/{tenant}/tokens/{issued['token_id']}")
        assert revoked.status_code == 204, revoked.text
        assert_problem(writer.get(secret_path(tenant, "k")), 401, "unauthorized")
        assert_problem(writer.put(secret_path(tenant, "k"), json={"value": 2}), 401,
                       "unauthorized")


def test_expired_token_is_401(server: Server, admin: httpx.Client, tenant: str) -> None:
    issued = issue_token(admin, tenant, "reader", ttl_seconds=1)
    time.sleep(1.5)
    with server.client(issued["token"]) as reader:
        assert_problem(reader.get(f"/v1/tenants/{tenant}/secrets"), 401, "unauthorized")


@pytest.mark.parametrize("authorization", [
    None,
    "Bearer",
    "Bearer not-a-token",
    "Bearer slt_0000000000000000_forgedforgedforgedforgedforgedforged",
    "Basic dXNlcjpwYXNz",
    "e2e-admin",
])
def test_missing_or_garbage_token_is_401_unauthorized(server: Server, tenant: str,
                                                      authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    with server.client(**headers) as anonymous:
        for response in (anonymous.get("/v1/tenants"),
                         anonymous.get(f"/v1/tenants/{tenant}/secrets"),
                         anonymous.put(secret_path(tenant, "k"), json={"value": 1})):
            assert_problem(response, 401, "unauthorized")


def test_unauthenticated_write_changes_nothing(server: Server, admin: httpx.Client,
                                               tenant: str) -> None:
    with server.client("garbage") as anonymous:
        assert_problem(anonymous.put(secret_path(tenant, "k"), json={"value": 1}), 401)
    items: list[dict[str, Any]] = get_json(admin, f"/v1/tenants/{tenant}/secrets")["items"]
    assert items == []
