"""The command line working on the same storage while ``serve`` runs."""

from __future__ import annotations

import subprocess

import httpx

from tests.e2e.helpers import CLI, Server, assert_problem, put_value, secret_path


def cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), *args], env=server.env(), capture_output=True, text=True,
                          timeout=120, check=False)


def test_a_tenant_token_created_by_the_cli_works_at_once(server: Server, tenant: str) -> None:
    created = cli(server, "token", "create", "--tenant", tenant, "--role", "writer")
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    with server.client(token) as writer:
        put_value(writer, tenant, "from-cli", "v", expect=201)
        assert writer.get(secret_path(tenant, "from-cli")).json()["value"] == "v"


def test_an_admin_token_created_by_the_cli_works_at_once(server: Server) -> None:
    created = cli(server, "token", "create", "--role", "admin")
    assert created.returncode == 0, created.stderr
    with server.client(created.stdout.strip()) as admin:
        assert admin.get("/v1/tenants").status_code == 200


def test_a_token_revoked_by_the_cli_stops_working_at_once(
        server: Server, tenant: str, admin: httpx.Client) -> None:
    issued = admin.post(f"/v1/tenants/{tenant}/tokens", json={"role": "reader"}).json()
    revoked = cli(server, "token", "revoke", "--tenant", tenant, issued["token_id"])
    assert revoked.returncode == 0, revoked.stderr
    with server.client(issued["token"]) as reader:
        assert_problem(reader.get(f"/v1/tenants/{tenant}/secrets"), 401, "unauthorized")


def test_the_cli_sees_writes_the_server_acknowledged(
        server: Server, tenant: str, admin: httpx.Client) -> None:
    put_value(admin, tenant, "k", "v", expect=201)
    verified = cli(server, "verify", "--tenant", tenant)
    assert verified.returncode == 0, verified.stderr
    assert "ok" in verified.stdout
