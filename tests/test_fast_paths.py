"""The fast paths of GET and PUT of one secret (api/fast.py) answer exactly what the
routes answer, on both backends: the same statuses, headers and bytes, the same problems
in the same order, and token revocation or expiry by another process takes effect on
the very next request."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from secrets_ledger.api import fast
from secrets_ledger.api.app import create_app
from secrets_ledger.domain.tenant import RequestContext
from secrets_ledger.service.runtime import LedgerRuntime
from secrets_ledger.service.settings import Settings
from secrets_ledger.service.tokens import TokenStore
from tests.test_cli import cli_env

with warnings.catch_warnings():
    # Starlette would have the test client on httpx2; httpx is what this project has.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

ADMIN_CTX = RequestContext(actor="tok_admin", request_id="setup")
VALUES: list[Any] = [
    "plain", "", "h\u00e9llo \u2713 \U0001d11e", "</script>\u2028\u007f\"\\\n", 0, -1,
    12345678901234567890, 0.1, 1e-7, 1e100, -0.0, 2.5, True, False, None, [], {},
    {"b": [1, {"c": None}], "a": "z"}, [[["deep"]]],
]


@dataclass
class Apps:
    fast: TestClient
    routes: TestClient
    tokens: TokenStore
    runtime: LedgerRuntime
    settings: Settings
    tenant: str
    writer: str
    reader: str
    auditor: str
    writer_id: str


@pytest.fixture
def apps(runtime: LedgerRuntime, settings: Settings) -> Iterator[Apps]:
    tokens = TokenStore(runtime.storage.db, runtime.ledger)
    admin = tokens.issue("admin", None, None, "", ADMIN_CTX).token
    with TestClient(create_app(runtime.ledger, tokens)) as fast_client, \
            TestClient(create_app(runtime.ledger, tokens, fast_paths=False)) as route_client:
        made = fast_client.post("/v1/tenants", json={"tenant": "acme"},
                                headers={"Authorization": f"Bearer {admin}"})
        assert made.status_code == 201
        issued = {role: tokens.issue(role, "acme", None, "", ADMIN_CTX)
                  for role in ("writer", "reader", "auditor")}
        yield Apps(fast_client, route_client, tokens, runtime, settings, "acme",
                   issued["writer"].token, issued["reader"].token, issued["auditor"].token,
                   issued["writer"].token_id)


@pytest.fixture
def taken(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The fast-path handlers that ran, in order."""
    calls: list[str] = []
    get, put = fast.FastSecretPaths._get, fast.FastSecretPaths._put

    def spy_get(self: fast.FastSecretPaths, *args: Any) -> Any:
        calls.append("GET")
        return get(self, *args)

    def spy_put(self: fast.FastSecretPaths, *args: Any) -> Any:
        calls.append("PUT")
        return put(self, *args)

    monkeypatch.setattr(fast.FastSecretPaths, "_get", spy_get)
    monkeypatch.setattr(fast.FastSecretPaths, "_put", spy_put)
    return calls


def bearer(token: str, **more: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **more}


def answer(response: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = [(k, v) for k, v in response.headers.items() if k != "x-request-id"]
    return response.status_code, headers, response.content


def put(client: TestClient, token: str, key: str, body: Any, **headers: str) -> Any:
    return client.put(f"/v1/tenants/acme/secrets/{key}",
                      content=body if isinstance(body, bytes) else json.dumps(body),
                      headers=bearer(token, **{"Content-Type": "application/json",
                                               **headers}))


def same_write(fast_answer: Any, route_answer: Any) -> None:
    """Two writes of the same request to two keys: alike but for key and time."""
    assert fast_answer.status_code == route_answer.status_code
    assert [k for k in fast_answer.headers] == [k for k in route_answer.headers]
    assert fast_answer.headers["etag"] == route_answer.headers["etag"]
    a, b = fast_answer.json(), route_answer.json()
    assert list(a) == list(b) == ["key", "version", "created_at"]
    assert a["version"] == b["version"]


def test_reads_and_writes_answer_byte_for_byte_what_the_routes_answer(
        apps: Apps, taken: list[str]) -> None:
    for n, value in enumerate(VALUES):
        metadata = {"owner": "t\u00fcv", "n": str(n)} if n % 2 else None
        body = {"value": value} if metadata is None else {"value": value, "metadata": metadata}
        for repeat in range(2):  # 201 for version 1, then 200
            same_write(put(apps.fast, apps.writer, f"fast/{n}", body),
                       put(apps.routes, apps.writer, f"route/{n}", body))
            assert taken[-1] == "PUT", repeat
        fast_read = apps.fast.get(f"/v1/tenants/acme/secrets/fast/{n}",
                                  headers=bearer(apps.reader))
        assert taken[-1] == "GET"
        route_read = apps.routes.get(f"/v1/tenants/acme/secrets/fast/{n}",
                                     headers=bearer(apps.reader))
        assert answer(fast_read) == answer(route_read)
        assert fast_read.json()["value"] == value
        assert fast_read.headers["x-request-id"]
    # Both reads of each value are in the audit trail.
    page = apps.fast.get("/v1/tenants/acme/audit", params={"action": "read", "limit": 1000},
                         headers=bearer(apps.auditor)).json()
    assert len(page["items"]) == 2 * len(VALUES)
    given = apps.fast.get("/v1/tenants/acme/secrets/fast/0",
                          headers=bearer(apps.reader, **{"X-Request-Id": "mine-1"}))
    assert given.headers["x-request-id"] == "mine-1"


def test_errors_are_the_routes_problems(apps: Apps, taken: list[str]) -> None:
    put(apps.fast, apps.writer, "gone", {"value": 1})
    assert apps.fast.delete("/v1/tenants/acme/secrets/gone",
                            headers=bearer(apps.writer)).status_code == 204
    other = apps.tokens.issue("admin", None, None, "", ADMIN_CTX).token
    assert apps.fast.post("/v1/tenants", json={"tenant": "other"},
                          headers=bearer(other)).status_code == 201
    stranger = apps.tokens.issue("writer", "other", None, "", ADMIN_CTX).token
    for _ in range(2):
        put(apps.fast, apps.writer, "destroyed", {"value": 1})
    assert apps.fast.post("/v1/tenants/acme/secrets/destroyed/destroy", json={"versions": [2]},
                          headers=bearer(apps.writer)).status_code == 200
    assert apps.fast.post("/v1/tenants", json={"tenant": "shredded"},
                          headers=bearer(other)).status_code == 201
    shredded = apps.tokens.issue("writer", "shredded", None, "", ADMIN_CTX).token
    put(apps.fast, shredded, "a", {"value": 1})
    assert apps.fast.delete("/v1/tenants/shredded", headers=bearer(
        other, **{"X-Confirm-Shred": "shredded"})).status_code == 200
    cases: list[tuple[str, str, dict[str, str], bytes | None]] = [
        ("GET", "/v1/tenants/acme/secrets/absent", bearer(apps.reader), None),
        ("GET", "/v1/tenants/acme/secrets/gone", bearer(apps.reader), None),
        ("GET", "/v1/tenants/acme/secrets/gone", bearer(apps.auditor), None),
        ("GET", "/v1/tenants/acme/secrets/gone", bearer(stranger), None),
        ("GET", "/v1/tenants/nobody/secrets/a", bearer(other), None),
        ("GET", "/v1/tenants/nobody/secrets/a", bearer(apps.reader), None),
        ("GET", "/v1/tenants/acme/secrets/a", bearer("slt_nope_nope"), None),
        ("GET", "/v1/tenants/acme/secrets/a", {"Authorization": "Basic abc"}, None),
        ("GET", "/v1/tenants/acme/secrets/a", {}, None),
        ("GET", "/v1/tenants/Bad/secrets/a", bearer("slt_nope_nope"), None),
        ("GET", "/v1/tenants/acme/secrets/a/../b", bearer(apps.reader), None),
        ("GET", "/v1/tenants/acme/secrets/gone?version=1", bearer(apps.reader), None),
        ("PUT", "/v1/tenants/acme/secrets/a", bearer(apps.reader), b'{"value": 1}'),
        ("PUT", "/v1/tenants/acme/secrets/a", bearer(stranger), b'{"value": 1}'),
        ("PUT", "/v1/tenants/acme/secrets/a", bearer("slt_nope_nope"), b'{"value": 1}'),
        ("PUT", "/v1/tenants/acme/secrets/a", bearer(apps.writer), b'{"value": 1'),
        ("PUT", "/v1/tenants/acme/secrets/a", bearer(apps.writer), b'{"value": 1, "x": 2}'),
        ("PUT", "/v1/tenants/acme/secrets/a", bearer(apps.writer), b'{"metadata": {}}'),
        ("PUT", "/v1/tenants/acme/secrets/a", bearer(apps.writer),
         b'{"value": 1, "metadata": {"k": 1}}'),
        ("PUT", "/v1/tenants/acme/secrets/a", bearer(apps.writer), b""),
        ("PUT", "/v1/tenants/acme/secrets/a", bearer(apps.writer), b"[1]"),
        ("PUT", "/v1/tenants/acme/secrets/a", bearer(apps.writer), b'{"value": NaN}'),
        ("PUT", "/v1/tenants/acme/secrets/a", bearer(apps.writer),
         json.dumps({"value": "x" * 70_000}).encode()),
        ("PUT", "/v1/tenants/acme/secrets/a", bearer("slt_nope_nope"), b'{"value": 1'),
        # nested deeper than the JSON parser recurses (RecursionError, not ValueError)
        ("PUT", "/v1/tenants/acme/secrets/a", bearer(apps.writer),
         b'{"value": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
        ("PUT", "/v1/tenants/nobody/secrets/a", bearer(other), b'{"value": 1}'),
        ("GET", "/v1/tenants/acme/secrets/destroyed", bearer(apps.reader), None),
        ("GET", "/v1/tenants/shredded/secrets/a", bearer(shredded), None),
        ("GET", "/v1/tenants/shredded/secrets/a", bearer(other), None),
        ("PUT", "/v1/tenants/shredded/secrets/a", bearer(shredded), b'{"value": 2}'),
    ]
    for method, path, headers, body in cases:
        if body is not None:
            headers = {**headers, "Content-Type": "application/json"}
        fast_answer = apps.fast.request(method, path, headers=headers, content=body)
        route_answer = apps.routes.request(method, path, headers=headers, content=body)
        assert answer(fast_answer) == answer(route_answer), (method, path, body)
        assert fast_answer.status_code >= 400, (method, path, body)
    assert "GET" in taken and "PUT" in taken


def test_a_chunked_body_over_the_limit_gets_the_routes_answer(apps: Apps) -> None:
    chunk = json.dumps({"value": "x" * 60_000}).encode()
    answers = []
    for client in (apps.fast, apps.routes):
        answers.append(answer(client.put(
            "/v1/tenants/acme/secrets/big", content=iter([chunk] * 20),
            headers=bearer(apps.writer, **{"Content-Type": "application/json"}))))
    assert answers[0] == answers[1]
    assert answers[0][0] >= 400


def _edit_token(settings: Settings, sql: str, token_id: str) -> None:
    """An UPDATE of the tokens table from a connection of its own, as another process."""
    if settings.database_url is None:
        with sqlite3.connect(settings.data_dir / "ledger.sqlite") as conn:
            conn.execute(sql.replace("%s", "?"), (token_id,))
        return
    with psycopg.connect(settings.database_url.get_secret_value(), autocommit=True,
                         options=f"-c search_path={settings.database_schema}") as conn:
        conn.execute(sql, (token_id,))  # type: ignore[arg-type]


def test_a_revocation_by_another_process_stops_the_next_request(
        apps: Apps, taken: list[str]) -> None:
    assert put(apps.fast, apps.writer, "k", {"value": 1}).status_code == 201
    assert apps.fast.get("/v1/tenants/acme/secrets/k",
                         headers=bearer(apps.writer)).status_code == 200
    revoked = subprocess.run(
        [sys.executable, "-m", "secrets_ledger.api.cli", "token", "revoke", "--tenant", "acme",
         apps.writer_id], env=cli_env(apps.settings), capture_output=True, text=True,
        timeout=120, check=False)
    assert revoked.returncode == 0, revoked.stderr
    read = apps.fast.get("/v1/tenants/acme/secrets/k", headers=bearer(apps.writer))
    assert (read.status_code, read.json()["code"]) == (401, "unauthorized")
    written = put(apps.fast, apps.writer, "k", {"value": 2})
    assert (written.status_code, written.json()["code"]) == (401, "unauthorized")
    assert taken == ["PUT", "GET", "GET", "PUT"]


def test_an_expiry_set_elsewhere_stops_the_next_request(apps: Apps, taken: list[str]) -> None:
    issued = apps.tokens.issue("writer", "acme", 3600, "", ADMIN_CTX)
    assert put(apps.fast, issued.token, "k", {"value": 1}).status_code == 201
    _edit_token(apps.settings, "UPDATE tokens SET expires_at = '2000-01-01T00:00:00Z'"
                " WHERE token_id = %s", issued.token_id)
    read = apps.fast.get("/v1/tenants/acme/secrets/k", headers=bearer(issued.token))
    assert (read.status_code, read.json()["detail"]) == (401, "the token has expired")
    written = put(apps.fast, issued.token, "k", {"value": 2})
    assert (written.status_code, written.json()["detail"]) == (401, "the token has expired")
    assert taken == ["PUT", "GET", "PUT"]


def test_a_read_after_a_write_by_another_process_sees_it(apps: Apps) -> None:
    assert put(apps.fast, apps.writer, "k", {"value": "first"}).status_code == 201
    assert apps.fast.get("/v1/tenants/acme/secrets/k",
                         headers=bearer(apps.writer)).json()["value"] == "first"
    with LedgerRuntime(apps.settings, follow=False) as other:
        ctx = RequestContext(actor="tok_other", request_id="elsewhere")
        other.ledger.put_secret("acme", "k", "second", None, None, ctx)
    read = apps.fast.get("/v1/tenants/acme/secrets/k", headers=bearer(apps.writer))
    assert (read.json()["value"], read.headers["etag"]) == ("second", '"2"')
