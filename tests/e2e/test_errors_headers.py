"""Every error is application/problem+json; every response carries X-Request-Id."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import (
    Server,
    assert_problem,
    issue_token,
    put_value,
    secret_path,
    unique,
)

# (name, status, code, request) where request(server, admin, tenant) -> response
Call = Callable[[Server, httpx.Client, str], httpx.Response]


def _as(server: Server, admin: httpx.Client, tenant: str, role: str) -> httpx.Client:
    return server.client(issue_token(admin, tenant, role)["token"])


def _reader_put(server: Server, admin: httpx.Client, tenant: str) -> httpx.Response:
    with _as(server, admin, tenant, "reader") as reader:
        return reader.put(secret_path(tenant, "k"), json={"value": 1})


def _deleted_get(server: Server, admin: httpx.Client, tenant: str) -> httpx.Response:
    put_value(admin, tenant, "gone", 1)
    assert admin.delete(secret_path(tenant, "gone")).status_code == 204
    return admin.get(secret_path(tenant, "gone"))


def _conflict(server: Server, admin: httpx.Client, tenant: str) -> httpx.Response:
    put_value(admin, tenant, "c", 1)
    return admin.put(secret_path(tenant, "c"), json={"value": 2}, headers={"If-Match": '"7"'})


def _reused_key(server: Server, admin: httpx.Client, tenant: str) -> httpx.Response:
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    admin.put(secret_path(tenant, "i"), json={"value": 1}, headers=headers)
    return admin.put(secret_path(tenant, "i"), json={"value": 2}, headers=headers)


ERRORS: list[tuple[str, int, str | None, Call]] = [
    ("no_token", 401, "unauthorized",
     lambda s, a, t: httpx.get(f"{s.base_url}/v1/tenants/{t}/secrets")),
    ("forbidden", 403, "forbidden", _reader_put),
    ("unknown_tenant", 404, "tenant_not_found",
     lambda s, a, t: a.get(f"/v1/tenants/{unique()}/secrets")),
    ("unknown_secret", 404, "secret_not_found",
     lambda s, a, t: a.get(secret_path(t, "nope"))),
    ("unknown_route", 404, None, lambda s, a, t: a.get("/v1/nothing-here")),
    ("wrong_method", 405, None, lambda s, a, t: a.patch(secret_path(t, "k"), json={})),
    ("tenant_exists", 409, "tenant_exists",
     lambda s, a, t: a.post("/v1/tenants", json={"tenant": t})),
    ("idempotency_key_reused", 409, "idempotency_key_reused", _reused_key),
    ("secret_deleted", 410, "secret_deleted", _deleted_get),
    ("version_conflict", 412, "version_conflict", _conflict),
    ("value_too_large", 413, "value_too_large",
     lambda s, a, t: a.put(secret_path(t, "big"), json={"value": "x" * 70_000})),
    ("malformed_json", 400, "invalid_request",
     lambda s, a, t: a.put(secret_path(t, "k"), content=b'{"value": ',
                           headers={"Content-Type": "application/json"})),
    ("wrong_type", 400, "invalid_request",
     lambda s, a, t: a.put(secret_path(t, "k"), json={"value": 1, "metadata": {"a": 1}})),
    ("missing_value", 400, "invalid_request",
     lambda s, a, t: a.put(secret_path(t, "k"), json={"metadata": {}})),
    ("unknown_field", 400, "invalid_request",
     lambda s, a, t: a.put(secret_path(t, "k"), json={"value": 1, "colour": "red"})),
    ("bad_limit", 400, "invalid_request",
     lambda s, a, t: a.get(f"/v1/tenants/{t}/secrets", params={"limit": "many"})),
    ("bad_version_param", 400, "invalid_request",
     lambda s, a, t: a.get(secret_path(t, "k"), params={"version": "one"})),
    ("bad_time", 400, "invalid_request",
     lambda s, a, t: a.get(secret_path(t, "k"), params={"at": "yesterday"})),
]


@pytest.mark.parametrize(("status", "code", "call"), [e[1:] for e in ERRORS],
                         ids=[e[0] for e in ERRORS])
def test_every_error_is_problem_json(server: Server, admin: httpx.Client, tenant: str,
                                     status: int, code: str | None, call: Call) -> None:
    assert_problem(call(server, admin, tenant), status, code)


def test_request_body_over_the_server_limit_is_413_problem(server: Server, admin: httpx.Client,
                                                           tenant: str) -> None:
    response = admin.put(secret_path(tenant, "huge"), json={"value": "x" * 2_000_000})
    assert_problem(response, 413, "value_too_large")


def test_error_never_echoes_the_value(admin: httpx.Client, tenant: str) -> None:
    marker = f"MARKER-{uuid.uuid4().hex}"
    responses = [
        admin.put(secret_path(tenant, "k"), json={"value": marker, "metadata": {"a": 1}}),
        admin.put(secret_path(tenant, "k"), json={"value": marker * 3000}),
        admin.put(secret_path(tenant, "k"), json={"value": marker, "extra": marker}),
        admin.put(secret_path(tenant, "k"), content=f'{{"value": "{marker}"'.encode(),
                  headers={"Content-Type": "application/json"}),
    ]
    for response in responses:
        assert 400 <= response.status_code < 500, response.text
        assert marker not in response.text


def test_response_has_request_id(server: Server, admin: httpx.Client, tenant: str) -> None:
    responses = [
        httpx.get(f"{server.base_url}/healthz"),
        httpx.get(f"{server.base_url}/metrics"),
        httpx.get(f"{server.base_url}/v1/tenants"),
        admin.put(secret_path(tenant, "k"), json={"value": 1}),
        admin.get(secret_path(tenant, "k")),
        admin.get(secret_path(tenant, "absent")),
        admin.get("/v1/no-such-route"),
    ]
    ids = [r.headers.get("X-Request-Id") for r in responses]
    assert all(ids), ids
    assert len(set(ids)) == len(ids), "each request gets an id of its own"


@pytest.mark.parametrize(("method", "path", "body"), [
    ("GET", "/healthz", None),
    ("PUT", "/v1/tenants/{t}/secrets/k", {"value": 1}),
    ("GET", "/v1/tenants/{t}/secrets/k", None),
    ("GET", "/v1/tenants/{t}/secrets/absent", None),
    ("GET", "/v1/tenants/unknown-tenant-x/secrets", None),
    ("POST", "/v1/tenants/{t}/transactions", {"operations": []}),
])
def test_request_id_is_echoed(admin: httpx.Client, tenant: str, method: str, path: str,
                              body: Any) -> None:
    if method == "GET" and path.endswith("/k"):
        put_value(admin, tenant, "k", 1)
    sent = f"e2e-{uuid.uuid4().hex}"
    response = admin.request(method, path.format(t=tenant), json=body,
                             headers={"X-Request-Id": sent})
    assert response.headers.get("X-Request-Id") == sent


def test_request_id_is_echoed_on_401(server: Server) -> None:
    sent = f"e2e-{uuid.uuid4().hex}"
    response = httpx.get(f"{server.base_url}/v1/tenants", headers={"X-Request-Id": sent})
    assert_problem(response, 401, "unauthorized")
    assert response.headers.get("X-Request-Id") == sent


def test_request_id_is_echoed_on_oversize_body(admin: httpx.Client, tenant: str) -> None:
    sent = f"e2e-{uuid.uuid4().hex}"
    response = admin.put(secret_path(tenant, "huge"), json={"value": "x" * 2_000_000},
                         headers={"X-Request-Id": sent})
    assert_problem(response, 413, "value_too_large")
    assert response.headers.get("X-Request-Id") == sent
