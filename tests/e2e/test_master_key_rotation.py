"""Master-key rotation while servers run: two servers on one store take writes (new
tenants, whose keys are wrapped at that moment, included) throughout a rotation; then
everything restarts with the new key alone, and every acknowledged value reads back.
Both key sources: the embedded key file, and ``LEDGER_MASTER_KEY``/``LEDGER_NEW_MASTER_KEY``.
"""

from __future__ import annotations

import base64
import itertools
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.e2e.helpers import (
    BACKENDS,
    CLI,
    Server,
    drop_schema,
    require_postgres,
    secret_path,
)


def key_text() -> str:
    return base64.b64encode(os.urandom(32)).decode("ascii")


@dataclass
class Store:
    """Two servers on one store (a data directory, and a schema on PostgreSQL)."""

    backend: str
    root: Path
    schema: str | None
    servers: list[Server] = field(default_factory=list)

    def server(self, name: str, **keys: str) -> Server:
        server = Server(self.backend, self.root / "data", self.root / f"{name}.log",
                        schema=self.schema, extra_env=keys)
        self.servers.append(server)
        return server

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        base = Server(self.backend, self.root / "data", self.root / "cli.log",
                      schema=self.schema, extra_env=env).env()
        return subprocess.run([str(CLI), *args], env=base, capture_output=True, text=True,
                              timeout=120, check=False)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    schema = None
    if request.param == "postgres":
        require_postgres()
        schema = f"e2e_{uuid.uuid4().hex[:12]}"
    (tmp_path / "data").mkdir()
    store = Store(str(request.param), tmp_path, schema)
    made = store.cli("migrate")  # a ledger to work on (commands never make one by accident)
    assert made.returncode == 0, made.stderr
    try:
        yield store
    finally:
        for server in store.servers:
            server.stop()
        if schema is not None:
            drop_schema(schema)


class Writes:
    """Writes through every server in turn until stopped: each round opens a tenant (a
    tenant key wrapped now) and writes a value in it and in the first tenant. Keeps
    what was acknowledged; a refused connection (a server restarting) is not a write."""

    def __init__(self, servers: list[Server]) -> None:
        self.servers = servers
        self.acknowledged: dict[tuple[str, str], str] = {}
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _round(self, server: Server, number: int) -> None:
        tenant = f"r{number}-{uuid.uuid4().hex[:6]}"
        with server.admin() as admin:
            opened = admin.post("/v1/tenants", json={"tenant": tenant})
            if opened.status_code != 201:
                self.failures.append(f"open {tenant}: {opened.status_code}")
                return
            for where in (tenant, "first"):
                key, value = f"k{number}", f"value {number} in {where}"
                put = admin.put(secret_path(where, key), json={"value": value})
                if put.status_code in (200, 201):
                    self.acknowledged[(where, key)] = value
                else:
                    self.failures.append(f"put {where}/{key}: {put.status_code} {put.text}")

    def _run(self) -> None:
        for number in itertools.count():
            if self._stop.is_set():
                return
            server = self.servers[number % len(self.servers)]
            try:
                self._round(server, number)
            except httpx.TransportError:
                time.sleep(0.05)  # that server is restarting

    @contextmanager
    def running(self) -> Iterator[Writes]:
        self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._thread.join(timeout=60)


def open_first_tenant(server: Server) -> None:
    with server.admin() as admin:
        assert admin.post("/v1/tenants", json={"tenant": "first"}).status_code == 201


def assert_all_read_back(server: Server, acknowledged: dict[tuple[str, str], str]) -> None:
    assert len(acknowledged) > 10
    with server.admin() as admin:
        for (tenant, key), value in acknowledged.items():
            got = admin.get(secret_path(tenant, key))
            assert (got.status_code, got.json().get("value")) == (200, value), (tenant, key)


def test_a_key_file_rotation_beside_two_running_servers_loses_nothing(store: Store) -> None:
    first, second = store.server("a"), store.server("b")
    first.start()
    second.admin_token = first.admin_token
    second.start()
    open_first_tenant(first)
    with Writes([first, second]).running() as writes:
        time.sleep(1.0)
        rotated = store.cli("keys", "rotate-master")
        time.sleep(1.0)
    assert rotated.returncode == 0, rotated.stderr
    assert "retired master key" in rotated.stdout
    assert writes.failures == []
    first.stop()
    second.stop()
    assert not (store.root / "data" / "master.key.next").exists()
    first.start()  # the new key file alone
    assert_all_read_back(first, writes.acknowledged)
    again = store.cli("keys", "rotate-master")  # a rerun rotates again, and says so
    assert again.returncode == 0, again.stderr
    assert_all_read_back(first, writes.acknowledged)


def test_an_env_rotation_waits_for_every_server_to_hold_the_new_key(store: Store) -> None:
    old, new = key_text(), key_text()
    first = store.server("a", LEDGER_MASTER_KEY=old)
    second = store.server("b", LEDGER_MASTER_KEY=old)
    first.start()
    second.admin_token = first.admin_token
    second.start()
    open_first_tenant(first)
    with Writes([first, second]).running() as writes:
        # 1. The servers do not hold the new key yet: refused, and nothing changes.
        early = store.cli("keys", "rotate-master", LEDGER_MASTER_KEY=old,
                          LEDGER_NEW_MASTER_KEY=new, LEDGER_MASTER_ROTATION_WAIT="1")
        assert early.returncode == 2
        assert "2 running server(s) do not hold the new master key" in early.stderr
        # 2. Each server restarted in turn with both keys; then the rotation goes through.
        for server in (first, second):
            server.extra_env["LEDGER_NEW_MASTER_KEY"] = new
            server.restart()
        rotated = store.cli("keys", "rotate-master", LEDGER_MASTER_KEY=old,
                            LEDGER_NEW_MASTER_KEY=new)
        assert rotated.returncode == 0, rotated.stderr
        assert "retired master key" in rotated.stdout
        again = store.cli("keys", "rotate-master", LEDGER_MASTER_KEY=old,
                          LEDGER_NEW_MASTER_KEY=new)
        assert again.returncode == 0, again.stderr
        assert "was in force already; re-wrapped 0 tenant keys" in again.stdout
        time.sleep(1.0)
    assert writes.failures == []
    # 3. Everything restarted with the new key alone.
    for server in (first, second):
        server.stop()
        server.extra_env = {"LEDGER_MASTER_KEY": new}
    first.start()
    assert_all_read_back(first, writes.acknowledged)


def test_a_server_with_the_retired_key_alone_refuses_to_start(store: Store) -> None:
    old, new = key_text(), key_text()
    opened = store.cli("tenant", "create", "acme", LEDGER_MASTER_KEY=old)
    assert opened.returncode == 0, opened.stderr
    rotated = store.cli("keys", "rotate-master", LEDGER_MASTER_KEY=old,
                        LEDGER_NEW_MASTER_KEY=new)
    assert rotated.returncode == 0, rotated.stderr
    refused = store.cli("tenant", "list", LEDGER_MASTER_KEY=old)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1
    assert "was retired by a rotation" in refused.stderr
    assert old not in refused.stderr + refused.stdout


@pytest.mark.parametrize("command", [("serve", "--port", "0"), ("tenant", "list")])
def test_a_master_key_that_opens_nothing_is_refused_at_start(
        store: Store, command: tuple[str, ...]) -> None:
    right, wrong = key_text(), key_text()
    opened = store.cli("tenant", "create", "acme", LEDGER_MASTER_KEY=right)
    assert opened.returncode == 0, opened.stderr
    refused = store.cli(*command, LEDGER_MASTER_KEY=wrong)
    assert refused.returncode == 2
    assert refused.stderr.count("\n") == 1, refused.stderr
    assert "does not open this ledger" in refused.stderr
    assert wrong not in refused.stderr + refused.stdout
    # Nothing was wrapped under the wrong key: the right one still opens everything.
    assert store.cli("tenant", "create", "beta", LEDGER_MASTER_KEY=right).returncode == 0
