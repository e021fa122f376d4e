"""Token listing and revocation over the REST app, on both backends: admin tokens can be
revoked (``DELETE /v1/tokens/{token_id}``), every token listed (``GET /v1/tokens``,
``GET /v1/tenants/{tenant}/tokens``), never with its secret or hash; tenant tokens may
do neither."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from secrets_ledger.core.principals import hash_token
from secrets_ledger.core.settings import Settings
from secrets_ledger.runtime import LedgerRuntime
from tests.test_rest_app import ADMIN_CTX, App, send, serving


@pytest.fixture
def app(runtime: LedgerRuntime, settings: Settings) -> Iterator[App]:
    with serving(runtime, settings) as served:
        yield served


def test_an_admin_token_revoked_over_http_is_refused_at_once(app: App) -> None:
    other = app.ledger.issue_token("admin", None, ADMIN_CTX)
    assert send(app, "GET", "/v1/tenants", other.token).status_code == 200
    assert send(app, "DELETE", f"/v1/tokens/{other.token_id}", "admin").status_code == 204
    refused = send(app, "GET", "/v1/tenants", other.token)
    assert (refused.status_code, refused.json()["code"]) == (401, "unauthorized")
    again = send(app, "DELETE", f"/v1/tokens/{other.token_id}", "admin")
    assert (again.status_code, again.json()["code"]) == (404, "token_not_found")


def test_an_admin_may_revoke_its_own_token(app: App) -> None:
    own = app.ledger.issue_token("admin", None, ADMIN_CTX)
    assert send(app, "DELETE", f"/v1/tokens/{own.token_id}", own.token).status_code == 204
    assert send(app, "GET", "/v1/tokens", own.token).status_code == 401


def test_the_admin_path_revokes_a_tenant_token_too(app: App) -> None:
    assert send(app, "DELETE", f"/v1/tokens/{app.writer_id}", "admin").status_code == 204
    assert send(app, "GET", "/v1/tenants/acme/secrets", "writer").status_code == 401
    audit = send(app, "GET", "/v1/tenants/acme/audit?action=token_revoked", "admin").json()
    assert [row["action"] for row in audit["items"]] == ["token_revoked"]


def test_the_tenant_path_does_not_revoke_an_admin_token(app: App) -> None:
    other = app.ledger.issue_token("admin", None, ADMIN_CTX)
    answer = send(app, "DELETE", f"/v1/tenants/acme/tokens/{other.token_id}", "admin")
    assert (answer.status_code, answer.json()["code"]) == (404, "token_not_found")
    assert send(app, "GET", "/v1/tenants", other.token).status_code == 200


def test_the_admin_lists_tokens_without_their_secrets(app: App) -> None:
    everything = send(app, "GET", "/v1/tokens", "admin")
    assert everything.status_code == 200
    items = everything.json()["items"]
    assert {item["role"] for item in items} == {"admin", "writer", "reader", "auditor"}
    assert set(items[0]) == {"token_id", "role", "tenant", "description", "created_at",
                             "created_by", "expires_at", "revoked_at", "revoked_by"}
    for token in app.tokens.values():
        assert token not in everything.text and hash_token(token) not in everything.text
    filtered = send(app, "GET", "/v1/tokens?tenant=acme", "admin").json()["items"]
    scoped = send(app, "GET", "/v1/tenants/acme/tokens", "admin").json()["items"]
    assert filtered == scoped
    assert sorted(item["role"] for item in scoped) == ["auditor", "reader", "writer"]


def test_a_bad_tenant_filter_is_400_and_an_unknown_tenant_404(app: App) -> None:
    bad = send(app, "GET", "/v1/tokens?tenant=Not%20A%20Name", "admin")
    assert (bad.status_code, bad.json()["code"]) == (400, "invalid_request")
    unknown = send(app, "GET", "/v1/tenants/nobody/tokens", "admin")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "tenant_not_found")


@pytest.mark.parametrize("role", ["writer", "reader", "auditor"])
def test_tenant_tokens_may_neither_list_nor_revoke_tokens(app: App, role: str) -> None:
    for method, path, status in (("GET", "/v1/tokens", 403),
                                 ("GET", "/v1/tenants/acme/tokens", 403),
                                 ("GET", "/v1/tenants/other/tokens", 404),
                                 ("DELETE", f"/v1/tokens/{app.writer_id}", 403)):
        assert send(app, method, path, role).status_code == status, (method, path)
    assert send(app, "GET", "/v1/tenants/acme/secrets", "writer").status_code == 200


@pytest.mark.parametrize("path", ["/v1/tokens/{}", "/v1/tenants/acme/tokens/{}"])
def test_a_path_naming_a_token_by_the_token_itself_is_404_and_revokes_nothing(
        app: App, path: str) -> None:
    answer = send(app, "DELETE", path.format(app.tokens["writer"]), "admin")
    assert (answer.status_code, answer.json()["code"]) == (404, "token_not_found")
    assert app.tokens["writer"] not in answer.text
    assert send(app, "GET", "/v1/tenants/acme/secrets", "writer").status_code == 200
    refused = send(app, "DELETE", path.format(app.tokens["writer"]), "writer")
    assert refused.status_code in (403, 404) and refused.json()["code"] != "token_not_found"
