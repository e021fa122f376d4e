"""A token's life over real HTTP: a restart with a new ``LEDGER_BOOTSTRAP_TOKEN`` revokes
the previous one, and an admin token revoked over HTTP is refused at once."""

from __future__ import annotations

import uuid

from tests.e2e.helpers import Server, assert_problem


def test_a_restart_with_a_new_bootstrap_token_revokes_the_previous_one(
        server: Server) -> None:
    previous = server.admin_token
    server.admin_token = f"e2e-admin-{uuid.uuid4().hex}"
    server.restart()
    with server.client(previous) as old:
        assert_problem(old.get("/v1/tenants"), 401, "unauthorized")
    with server.admin() as admin:
        assert admin.get("/v1/tenants").status_code == 200
        listed = admin.get("/v1/tokens").json()["items"]
    bootstraps = [item for item in listed if item["description"] == "LEDGER_BOOTSTRAP_TOKEN"]
    assert [(item["revoked_by"], item["created_by"]) for item in bootstraps] == [
        ("serve", "serve"), (None, "serve")]


def test_an_admin_token_revoked_over_http_is_refused_at_once(server: Server) -> None:
    with server.admin() as admin:
        listed = admin.get("/v1/tokens").json()["items"]
        live = next(item for item in listed if item["revoked_at"] is None)
        assert admin.delete(f"/v1/tokens/{live['token_id']}").status_code == 204
        assert_problem(admin.get("/v1/tenants"), 401, "unauthorized")
