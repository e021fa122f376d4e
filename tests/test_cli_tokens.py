"""The token commands as an operator uses them, real processes on both backends: any
token revoked by its id or by the token itself (never printed back), tokens listed
without their secrets, and ``serve`` refusing a weak bootstrap token."""

from __future__ import annotations

import subprocess

from secrets_ledger.core.principals import hash_token
from secrets_ledger.core.settings import Settings
from secrets_ledger.runtime import LedgerRuntime
from tests.support import run as run_coroutine
from tests.test_cli import CLI, cli_env, existing_ledger, run

__all__ = ["existing_ledger"]  # autouse: the commands work on an existing ledger

STRONG = "e2e-admin-5f0c1b7a9d2e4c6b8a0f1e3d5c7b9a2d"


def create(settings: Settings, *args: str) -> str:
    result = run(settings, "token", "create", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def token_id_of(token: str) -> str:
    return "tok_" + token.split("_")[1]


def works(settings: Settings, token: str) -> bool:
    """Whether the token is live, as the listing says (the same row every front end reads)."""
    listed = run(settings, "token", "list").stdout
    line = next(line for line in listed.splitlines() if line.startswith(token_id_of(token)))
    return line.split("\t")[6] == "-"


def test_token_revoke_without_a_tenant_revokes_an_admin_token(settings: Settings) -> None:
    token = create(settings, "--role", "admin")
    result = run(settings, "token", "revoke", token_id_of(token))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"revoked {token_id_of(token)}\n"
    assert not works(settings, token)


def test_token_revoke_takes_the_full_token_and_never_prints_it(settings: Settings) -> None:
    run(settings, "tenant", "create", "acme")
    token = create(settings, "--tenant", "acme", "--role", "reader")
    result = run(settings, "token", "revoke", "--tenant", "acme", token)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"revoked {token_id_of(token)}\n"
    assert token.split("_", 2)[2] not in result.stdout + result.stderr
    assert not works(settings, token)
    again = run(settings, "token", "revoke", token)
    assert again.returncode == 2
    assert token.split("_", 2)[2] not in again.stdout + again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


def test_token_revoke_reads_the_token_from_stdin_given_a_dash(settings: Settings) -> None:
    token = create(settings, "--role", "admin")
    result = subprocess.run([*CLI, "token", "revoke", "-"], input=token + "\n",
                            env=cli_env(settings), capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert not works(settings, token)


def test_token_list_shows_every_token_and_never_a_secret(settings: Settings) -> None:
    run(settings, "tenant", "create", "acme")
    admin = create(settings, "--role", "admin")
    writer = create(settings, "--tenant", "acme", "--role", "writer", "--ttl-seconds", "60")
    result = run(settings, "token", "list")
    assert result.returncode == 0, result.stderr
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert [row[:3] for row in rows] == [[token_id_of(admin), "admin", "-"],
                                         [token_id_of(writer), "writer", "acme"]]
    for token in (admin, writer):
        assert token.split("_", 2)[2] not in result.stdout
        assert hash_token(token) not in result.stdout
    only_acme = run(settings, "token", "list", "--tenant", "acme").stdout.splitlines()
    assert [line.split("\t")[0] for line in only_acme] == [token_id_of(writer)]


def serve_with(settings: Settings, bootstrap: str) -> subprocess.CompletedProcess[str]:
    env = cli_env(settings) | {"LEDGER_BOOTSTRAP_TOKEN": bootstrap}
    # Refused before it binds: were it not, the test would time out.
    return subprocess.run([*CLI, "serve", "--port", "0"], env=env, capture_output=True,
                          text=True, timeout=60, check=False)


def test_serve_refuses_a_weak_bootstrap_token_with_one_line_and_exit_2(
        settings: Settings) -> None:
    weak = "changeme-changeme-changeme-changeme"
    result = serve_with(settings, weak)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "LEDGER_BOOTSTRAP_TOKEN is too weak" in result.stderr
    assert weak not in result.stdout + result.stderr
    assert run(settings, "token", "list").stdout == ""


def test_serve_refuses_a_revoked_bootstrap_token_with_one_line_and_exit_2(
        settings: Settings) -> None:
    with LedgerRuntime(settings) as runtime:  # an earlier serve's start
        run_coroutine(runtime.ledger.tokens.bootstrap(STRONG))
    assert run(settings, "token", "revoke", STRONG).returncode == 0
    refused = serve_with(settings, STRONG)
    assert refused.returncode == 2
    assert "LEDGER_BOOTSTRAP_TOKEN was revoked" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
