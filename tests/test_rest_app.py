"""The REST app in process, on both backends: every request takes the one path (routes
over the core's use cases, batched by the group-commit writer), errors come in the
contract's order (the credential, then the tenant's scope and the role, then the
request), and another process's revocation, expiry or write shows on the next request."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from secrets_ledger.api.rest.app import create_app
from secrets_ledger.api.rest.paths import rest_key
from secrets_ledger.core.settings import Settings
from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.domain.errors import InvalidRequest
from secrets_ledger.runtime import LedgerRuntime
from tests.conftest import BACKENDS, PG_URL, make_settings
from tests.support import Blocking, blocking
from tests.test_cli import cli_env

with warnings.catch_warnings():
    # Starlette would have the test client on httpx2; httpx is what this project has.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ADMIN_CTX = RequestContext(actor="tok_admin", request_id="setup")


@dataclass
class App:
    client: TestClient
    ledger: Blocking
    settings: Settings
    tokens: dict[str, str]  # name -> bearer token
    writer_id: str


@contextmanager
def serving(runtime: LedgerRuntime, settings: Settings) -> Iterator[App]:
    ledger = blocking(runtime)
    tokens = {"admin": ledger.issue_token("admin", None, ADMIN_CTX).token}
    for tenant in ("acme", "other", "shredded"):
        ledger.open_tenant(tenant, ADMIN_CTX)
    issued = {role: ledger.issue_token(role, "acme", ADMIN_CTX)
              for role in ("writer", "reader", "auditor")}
    tokens |= {role: token.token for role, token in issued.items()}
    tokens["stranger"] = ledger.issue_token("writer", "other", ADMIN_CTX).token
    tokens["shredded"] = ledger.issue_token("writer", "shredded", ADMIN_CTX).token
    ledger.put_secret("acme", "gone", 1, None, None, ADMIN_CTX)
    ledger.delete_secret("acme", "gone", None, ADMIN_CTX)
    for n in range(2):
        ledger.put_secret("acme", "destroyed", n, None, None, ADMIN_CTX)
    ledger.destroy_versions("acme", "destroyed", [2], ADMIN_CTX)
    ledger.put_secret("shredded", "a", 1, None, None, ADMIN_CTX)
    ledger.shred_tenant("shredded", ADMIN_CTX)
    with TestClient(create_app(runtime.ledger, runtime.projector.lag, 1000)) as client:
        yield App(client, ledger, settings, tokens, issued["writer"].token_id)


@pytest.fixture
def app(runtime: LedgerRuntime, settings: Settings) -> Iterator[App]:
    with serving(runtime, settings) as served:
        yield served


@pytest.fixture(scope="module", params=BACKENDS)
def refusing_app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                 ) -> Iterator[App]:
    """One app per backend for the error cases: each is refused, so none changes what
    the next one finds."""
    backend = str(request.param)
    schema = f"t_{uuid.uuid4().hex[:12]}" if backend == "postgres" else None
    settings = make_settings(backend, tmp_path_factory.mktemp("refusals") / "data", schema)
    runtime = LedgerRuntime(settings)
    try:
        with serving(runtime, settings) as served:
            yield served
    finally:
        runtime.close()
        if schema is not None:
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def bearer(token: str, **more: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **more}


def send(app: App, method: str, path: str, token: str | None, body: bytes | None = None,
         **headers: str) -> Any:
    if token is not None:
        headers = bearer(app.tokens.get(token, token), **headers)
    if body is not None:
        headers["Content-Type"] = "application/json"
    return app.client.request(method, path, headers=headers, content=body)


ACME = "/v1/tenants/acme/secrets"
NESTED = b'{"value": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
# (method, path, token, body, headers) -> (status, code)
CASES: list[tuple[str, str, str | None, bytes | None, dict[str, str], int, str]] = [
    ("GET", f"{ACME}/absent", "reader", None, {}, 404, "secret_not_found"),
    ("GET", f"{ACME}/gone", "reader", None, {}, 410, "secret_deleted"),
    ("GET", f"{ACME}/gone", "auditor", None, {}, 403, "forbidden"),
    ("GET", f"{ACME}/gone", "stranger", None, {}, 404, "tenant_not_found"),
    ("GET", "/v1/tenants/nobody/secrets/a", "admin", None, {}, 404, "tenant_not_found"),
    ("GET", "/v1/tenants/nobody/secrets/a", "reader", None, {}, 404, "tenant_not_found"),
    ("GET", f"{ACME}/a", "slt_nope_nope", None, {}, 401, "unauthorized"),
    ("GET", f"{ACME}/a", None, None, {"Authorization": "Basic abc"}, 401, "unauthorized"),
    ("GET", f"{ACME}/a", None, None, {}, 401, "unauthorized"),
    ("GET", "/v1/tenants/Bad/secrets/a", "slt_nope_nope", None, {}, 401, "unauthorized"),
    ("GET", "/v1/tenants/Bad/secrets/a", "reader", None, {}, 404, "tenant_not_found"),
    ("GET", "/v1/tenants/Bad/secrets/a", "admin", None, {}, 400, "invalid_request"),
    ("GET", f"{ACME}/gone?version=1", "reader", None, {}, 410, "secret_deleted"),
    ("GET", f"{ACME}/a?version=0", "slt_nope_nope", None, {}, 401, "unauthorized"),
    ("GET", f"{ACME}/a?version=0", "auditor", None, {}, 400, "invalid_request"),
    ("GET", f"{ACME}/a?version=1&at=2026-01-01T00:00:00Z", "auditor", None, {}, 403,
     "forbidden"),
    ("GET", f"{ACME}/destroyed", "reader", None, {}, 410, "version_destroyed"),
    ("GET", "/v1/tenants/shredded/secrets/a", "shredded", None, {}, 410, "tenant_shredded"),
    ("GET", "/v1/tenants/shredded/secrets/a", "admin", None, {}, 410, "tenant_shredded"),
    ("PUT", f"{ACME}/a", "reader", b'{"value": 1}', {}, 403, "forbidden"),
    ("PUT", f"{ACME}/a", "stranger", b'{"value": 1}', {}, 404, "tenant_not_found"),
    ("PUT", f"{ACME}/a", "slt_nope_nope", b'{"value": 1}', {}, 401, "unauthorized"),
    ("PUT", f"{ACME}/a", "writer", b'{"value": 1', {}, 400, "invalid_request"),
    ("PUT", f"{ACME}/a", "writer", b'{"value": 1, "x": 2}', {}, 400, "invalid_request"),
    ("PUT", f"{ACME}/a", "writer", b'{"metadata": {}}', {}, 400, "invalid_request"),
    ("PUT", f"{ACME}/a", "writer", b'{"value": 1, "metadata": {"k": 1}}', {}, 400,
     "invalid_request"),
    ("PUT", f"{ACME}/a", "writer", b"", {}, 400, "invalid_request"),
    ("PUT", f"{ACME}/a", "writer", b"[1]", {}, 400, "invalid_request"),
    ("PUT", f"{ACME}/a", "writer", b'{"value": NaN}', {}, 400, "invalid_request"),
    ("PUT", f"{ACME}/a", "writer", json.dumps({"value": "x" * 70_000}).encode(), {}, 413,
     "value_too_large"),
    # A body that is not JSON at all is refused before anything else is read; one that is
    # JSON of the wrong shape after the token.
    ("PUT", f"{ACME}/a", "slt_nope_nope", b'{"value": 1', {}, 400, "invalid_request"),
    ("PUT", f"{ACME}/a", "slt_nope_nope", b'{"value": 1, "x": 2}', {}, 401, "unauthorized"),
    ("PUT", f"{ACME}/a", "writer", NESTED, {}, 400, "invalid_request"),
    ("PUT", "/v1/tenants/nobody/secrets/a", "admin", b'{"value": 1}', {}, 404,
     "tenant_not_found"),
    ("PUT", "/v1/tenants/shredded/secrets/a", "shredded", b'{"value": 2}', {}, 410,
     "tenant_shredded"),
    # A malformed header is judged after the caller's rights, a malformed body before.
    ("PUT", f"{ACME}/a", "reader", b'{"value": 1}', {"If-Match": "3"}, 403, "forbidden"),
    ("PUT", f"{ACME}/a", "slt_nope_nope", b'{"value": 1}', {"If-Match": "3"}, 401,
     "unauthorized"),
    ("PUT", f"{ACME}/a", "writer", b'{"value": 1}', {"If-Match": "3"}, 400, "invalid_request"),
    ("PUT", f"{ACME}/a", "reader", b'{"value": 1', {}, 400, "invalid_request"),
    ("PUT", f"{ACME}/a", "slt_nope_nope", b'{"value": 1}', {"Idempotency-Key": "a b"}, 401,
     "unauthorized"),
    ("PUT", f"{ACME}/a", "writer", b'{"value": 1}', {"Idempotency-Key": "a b"}, 400,
     "invalid_request"),
    ("PUT", f"{ACME}/k/versions", "reader", b'{"value": 1}', {}, 403, "forbidden"),
    ("PUT", f"{ACME}/k/versions", "writer", b'{"value": 1}', {}, 400, "invalid_request"),
    ("DELETE", "/v1/tenants/acme", "writer", None, {}, 403, "forbidden"),
    ("DELETE", "/v1/tenants/acme", "admin", None, {}, 400, "invalid_request"),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_each_error_is_the_contracts_answer_in_the_contracts_order(refusing_app: App,
                                                                   case: int) -> None:
    method, path, token, body, headers, status, code = CASES[case]
    answer = send(refusing_app, method, path, token, body, **headers)
    assert (answer.status_code, answer.json()["code"]) == (status, code), answer.text
    assert answer.headers["content-type"] == "application/problem+json"


def _edit_token(settings: Settings, sql: str, token_id: str) -> None:
    """An UPDATE of the tokens table from a connection of its own, as another process."""
    if settings.database_url is None:
        with sqlite3.connect(settings.data_dir / "ledger.sqlite") as conn:
            conn.execute(sql.replace("%s", "?"), (token_id,))
        return
    with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True,
                         options=f"-c search_path={settings.database_schema}") as conn:
        conn.execute(sql, (token_id,))  # type: ignore[arg-type]


def test_a_revocation_by_another_process_stops_the_next_request(app: App) -> None:
    assert send(app, "PUT", f"{ACME}/k", "writer", b'{"value": 1}').status_code == 201
    assert send(app, "GET", f"{ACME}/k", "writer").status_code == 200
    revoked = subprocess.run(
        [sys.executable, "-m", "secrets_ledger.api.cli", "token", "revoke", "--tenant", "acme",
         app.writer_id], env=cli_env(app.settings), capture_output=True, text=True,
        timeout=120, check=False)
    assert revoked.returncode == 0, revoked.stderr
    read = send(app, "GET", f"{ACME}/k", "writer")
    assert (read.status_code, read.json()["code"]) == (401, "unauthorized")
    written = send(app, "PUT", f"{ACME}/k", "writer", b'{"value": 2}')
    assert (written.status_code, written.json()["code"]) == (401, "unauthorized")


def test_an_expiry_set_elsewhere_stops_the_next_request(app: App) -> None:
    issued = app.ledger.issue_token("writer", "acme", ADMIN_CTX, ttl_seconds=3600)
    token = issued.token
    assert send(app, "PUT", f"{ACME}/k", token, b'{"value": 1}').status_code == 201
    _edit_token(app.settings, "UPDATE tokens SET expires_at = '2000-01-01T00:00:00Z'"
                " WHERE token_id = %s", issued.token_id)
    read = send(app, "GET", f"{ACME}/k", token)
    assert (read.status_code, read.json()["detail"]) == (401, "the token has expired")
    written = send(app, "PUT", f"{ACME}/k", token, b'{"value": 2}')
    assert (written.status_code, written.json()["detail"]) == (401, "the token has expired")


def test_a_read_after_a_write_by_another_process_sees_it(app: App) -> None:
    assert send(app, "PUT", f"{ACME}/k", "writer", b'{"value": "first"}').status_code == 201
    assert send(app, "GET", f"{ACME}/k", "writer").json()["value"] == "first"
    with LedgerRuntime(app.settings, follow=False) as other:
        ctx = RequestContext(actor="tok_other", request_id="elsewhere")
        blocking(other).put_secret("acme", "k", "second", None, None, ctx)
    read = send(app, "GET", f"{ACME}/k", "writer")
    assert (read.json()["value"], read.headers["etag"]) == ("second", '"2"')


def test_openapi_documents_the_paths_that_answer(app: App) -> None:
    paths = app.client.get("/openapi.json").json()["paths"]
    secret = paths["/v1/tenants/{tenant}/secrets/{key}"]
    assert {"get", "put", "delete"} <= set(secret)
    assert "SecretWithProofOut" in json.dumps(secret["get"]["responses"]["200"])


def test_openapi_documents_errors_as_the_server_answers_them(app: App) -> None:
    document = app.client.get("/openapi.json").json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "422" not in responses, (method, path)
            for status, response in responses.items():
                if int(status) >= 400:
                    assert list(response["content"]) == ["application/problem+json"]
            if path.startswith("/v1/"):
                assert {"400", "401", "403", "404", "503"} <= set(responses), (method, path)
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_no_docs_page_loads_scripts_from_elsewhere(app: App) -> None:
    for page in ("/docs", "/redoc"):
        assert app.client.get(page).status_code == 404


@pytest.mark.parametrize("key", ["versions", "k/versions", "a/b/undelete", "rollback",
                                 "x/destroy"])
def test_a_key_ending_with_a_sub_resource_name_cannot_be_addressed(key: str) -> None:
    with pytest.raises(InvalidRequest, match="sub-resource"):
        rest_key(key)


@pytest.mark.parametrize("key", ["versions/k", "a/versionsx", "undeleted", "k"])
def test_other_keys_can_be_addressed(key: str) -> None:
    assert rest_key(key) == key


def test_every_code_of_the_core_has_a_status_in_the_rest_api() -> None:
    from secrets_ledger.api.rest.problems import STATUS_OF
    from secrets_ledger.domain import errors

    codes = {cls.code for cls in vars(errors).values()
             if isinstance(cls, type) and issubclass(cls, errors.LedgerError)}
    assert codes - set(STATUS_OF) == set()
