"""The running server under test and small HTTP helpers shared by the e2e modules."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx
import psycopg
import pytest

PG_URL = os.environ.get(
    "LEDGER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", "postgres"]
CLI = Path(sys.executable).with_name("secrets-ledger")
START_TIMEOUT = 60.0
STOP_TIMEOUT = 45.0
PROBLEM_FIELDS = ("type", "title", "status", "detail", "code")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unique(prefix: str = "t") -> str:
    """A tenant (or key) name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def require_postgres() -> None:
    """An unreachable PostgreSQL fails the run: the e2e suite never skips it quietly."""
    try:
        with psycopg.connect(PG_URL, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        pytest.fail(f"PostgreSQL at {PG_URL} is not reachable: {error}", pytrace=False)


def drop_schema(schema: str) -> None:
    with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@dataclass
class Server:
    """One ``secrets-ledger serve`` subprocess and the storage it runs on."""

    backend: str
    data_dir: Path
    log_path: Path
    admin_token: str = field(default_factory=lambda: f"e2e-admin-{uuid.uuid4().hex}")
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    aws_port: int = field(default_factory=free_port)  # the AWS Secrets Manager façade
    vault_port: int = field(default_factory=free_port)  # the Vault KV v2 façade
    schema: str | None = None
    proc: subprocess.Popen[bytes] | None = None
    cli: Path = CLI  # the installed ``secrets-ledger`` that serves
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. master keys
    _log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def aws_url(self) -> str:
        return f"http://{self.host}:{self.aws_port}"

    @property
    def vault_url(self) -> str:
        return f"http://{self.host}:{self.vault_port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("LEDGER_") and k != "PYTHONPATH"}
        env.update(
            LEDGER_DATA_DIR=str(self.data_dir),
            LEDGER_BOOTSTRAP_TOKEN=self.admin_token,
            PYTHONUNBUFFERED="1",
        )
        if self.backend == "postgres":
            assert self.schema is not None
            env.update(LEDGER_DATABASE_URL=PG_URL, LEDGER_DATABASE_SCHEMA=self.schema)
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        assert self.proc is None, "the server is running already"
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [str(self.cli), "serve", "--host", self.host, "--port", str(self.port),
             *self.serve_options()],
            env=self.env(), stdout=self._log, stderr=subprocess.STDOUT,
            cwd=self.data_dir.parent,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._closed_log()
                self.proc = None
                pytest.fail(f"serve exited at start:\n{self.log_text()}", pytrace=False)
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"serve did not answer /healthz in time:\n{self.log_text()}", pytrace=False)

    def serve_options(self) -> list[str]:
        """The façades too, unless this is an older build (an upgrade test's)."""
        return [] if self.cli != CLI else ["--aws-port", str(self.aws_port),
                                           "--vault-port", str(self.vault_port)]

    def stop(self) -> int | None:
        """SIGTERM, then wait for the process to exit; returns its exit status."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                self._closed_log()
                pytest.fail("serve did not exit on SIGTERM", pytrace=False)
        self._closed_log()
        return proc.returncode

    def restart(self) -> int | None:
        """Stops the process (SIGTERM) and starts it again on the same storage and port."""
        status = self.stop()
        self.start()
        return status

    def _closed_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        return self.log_path.read_bytes().decode("utf-8", "replace")

    def client(self, token: str | None = None, **headers: str) -> httpx.Client:
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=60.0)

    def admin(self) -> httpx.Client:
        return self.client(self.admin_token)


@contextmanager
def running_server(backend: str, root: Path, cli: Path = CLI) -> Iterator[Server]:
    """Starts a server (``cli serve``) on fresh storage under ``root``; stops it and drops
    its schema."""
    schema = None
    if backend == "postgres":
        require_postgres()
        schema = f"e2e_{uuid.uuid4().hex[:12]}"
    data_dir = root / "data"
    data_dir.mkdir(parents=True)
    server = Server(backend, data_dir, root / "serve.log", schema=schema, cli=cli)
    try:
        server.start()
        yield server
    finally:
        try:
            server.stop()
        finally:
            if schema is not None:
                drop_schema(schema)


# ---- HTTP helpers ------------------------------------------------------------------------


def assert_problem(response: httpx.Response, status: int,
                   code: str | None = None) -> dict[str, Any]:
    """The response is an RFC 9457 problem with the given status (and code); returns it."""
    assert response.status_code == status, (response.status_code, response.text)
    media = response.headers.get("content-type", "").split(";")[0].strip()
    assert media == "application/problem+json", response.headers.get("content-type")
    body: dict[str, Any] = response.json()
    for name in PROBLEM_FIELDS:
        assert name in body, (name, body)
    assert body["status"] == status
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str)
    assert isinstance(body["code"], str) and body["code"]
    if code is not None:
        assert body["code"] == code, body
    return body


def secret_path(tenant: str, key: str, suffix: str = "") -> str:
    return f"/v1/tenants/{tenant}/secrets/{key}{suffix}"


def create_tenant(admin: httpx.Client, name: str | None = None) -> str:
    name = name or unique()
    response = admin.post("/v1/tenants", json={"tenant": name})
    assert response.status_code == 201, response.text
    return name


def issue_token(admin: httpx.Client, tenant: str, role: str, **extra: Any) -> dict[str, Any]:
    response = admin.post(f"/v1/tenants/{tenant}/tokens", json={"role": role, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def put_value(client: httpx.Client, tenant: str, key: str, value: Any,
              expect: int | tuple[int, ...] = (200, 201), **headers: str) -> dict[str, Any]:
    response = client.put(secret_path(tenant, key), json={"value": value}, headers=headers)
    wanted = (expect,) if isinstance(expect, int) else expect
    assert response.status_code in wanted, (response.status_code, response.text)
    body: dict[str, Any] = response.json()
    return body


def get_json(client: httpx.Client, path: str, **params: Any) -> dict[str, Any]:
    response = client.get(path, params=params)
    assert response.status_code == 200, (response.status_code, response.text)
    body: dict[str, Any] = response.json()
    return body


def audit_items(client: httpx.Client, tenant: str, **filters: Any) -> list[dict[str, Any]]:
    """Every audit row matching the filters, following cursors to the end."""
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 1000, **filters}
    while True:
        page = get_json(client, f"/v1/tenants/{tenant}/audit", **params)
        items.extend(page["items"])
        if page["next_cursor"] is None:
            return items
        params["cursor"] = page["next_cursor"]


def list_all_keys(client: httpx.Client, tenant: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    query: dict[str, Any] = {"limit": 1000, **params}
    while True:
        page = get_json(client, f"/v1/tenants/{tenant}/secrets", **query)
        items.extend(page["items"])
        if page["next_cursor"] is None:
            return items
        query["cursor"] = page["next_cursor"]


def verify(client: httpx.Client, tenant: str) -> dict[str, Any]:
    return get_json(client, f"/v1/tenants/{tenant}/verify")
