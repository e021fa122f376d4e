"""Tenant groups over real HTTP: ``serve`` on two groups (two schemas of one database, and
two separate PostgreSQL servers), every front end answering as on one store, and the
operator's ``verify`` and ``replay`` covering both groups."""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest

from secrets_ledger.core.directory import placement
from secrets_ledger.core.signing_keys import aws_key_pair
from tests.e2e.helpers import (
    CLI,
    Server,
    create_tenant,
    drop_schema,
    issue_token,
    put_value,
    require_postgres,
    secret_path,
)
from tests.e2e.test_aws_facade import NO_RETRIES, REGION
from tests.e2e.test_change_feed import SSE, sse_events
from tests.pg_instance import PostgresInstance


@pytest.fixture(scope="module", params=["two schemas", "two servers"])
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    require_postgres()
    home, blue = (f"e2e_{uuid.uuid4().hex[:12]}" for _ in range(2))
    root = tmp_path_factory.mktemp("groups")
    (root / "data").mkdir()
    with (PostgresInstance() if request.param == "two servers"
          else contextlib.nullcontext()) as instance:
        store: dict[str, str] = {"database_schema": blue}
        if instance is not None:
            store["database_url"] = instance.url
        running = Server("postgres", root / "data", root / "serve.log", schema=home,
                         extra_env={"LEDGER_GROUPS": json.dumps({"blue": store})})
        try:
            running.start()
            yield running
        finally:
            running.stop()
            drop_schema(home)
            if instance is None:
                drop_schema(blue)


def tenant_in(admin: httpx.Client, group: str) -> str:
    while placement(name := f"t-{uuid.uuid4().hex[:10]}", ["blue", "home"]) != group:
        pass
    return create_tenant(admin, name)


def cli(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), *args], env=server.env(), capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.fixture
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.admin() as client:
        yield client


@pytest.mark.parametrize("group", ["home", "blue"])
def test_a_tenant_of_either_group_writes_and_reads_over_rest(server: Server,
                                                             admin: httpx.Client,
                                                             group: str) -> None:
    tenant = tenant_in(admin, group)
    writer = issue_token(admin, tenant, "writer")["token"]
    with server.client(writer) as client:
        put_value(client, tenant, "db/password", "hunter2")
        read = client.get(secret_path(tenant, "db/password"))
    assert (read.status_code, read.json()["value"]) == (200, "hunter2")


def test_a_token_is_refused_on_a_tenant_of_the_other_group(server: Server,
                                                           admin: httpx.Client) -> None:
    mine, theirs = tenant_in(admin, "home"), tenant_in(admin, "blue")
    writer = issue_token(admin, mine, "writer")["token"]
    with server.client(writer) as client:
        refused = client.put(secret_path(theirs, "k"), json={"value": 1})
    assert refused.status_code == 404, refused.text
    audit = admin.get(f"/v1/tenants/{theirs}/audit").json()["items"]
    assert [item["action"] for item in audit] == ["tenant_opened"]


def test_the_tenant_listing_holds_both_groups_tenants(admin: httpx.Client) -> None:
    made = {tenant_in(admin, "home"), tenant_in(admin, "blue")}
    listed = [item["tenant"] for item in admin.get("/v1/tenants").json()["items"]]
    assert made <= set(listed) and listed == sorted(listed)


def test_the_vault_and_aws_facades_find_a_tenant_of_the_second_group(
        server: Server, admin: httpx.Client) -> None:
    tenant = tenant_in(admin, "blue")
    token = issue_token(admin, tenant, "writer")["token"]
    with httpx.Client(base_url=server.vault_url + "/v1/",
                      headers={"X-Vault-Token": token}) as vault:
        assert vault.post("sys/mounts/kv", json={"type": "kv", "options": {
            "version": "2"}}).status_code == 204
        assert vault.post("kv/data/app", json={"data": {"k": "v"}}).status_code == 200
        assert vault.get("kv/data/app").json()["data"]["data"] == {"k": "v"}
    key_id, secret = aws_key_pair(token)
    sm: Any = boto3.client("secretsmanager", region_name=REGION, endpoint_url=server.aws_url,
                           aws_access_key_id=key_id, aws_secret_access_key=secret,
                           config=NO_RETRIES)
    sm.create_secret(Name="api-key", SecretString="s3cret")
    assert sm.get_secret_value(SecretId="api-key")["SecretString"] == "s3cret"


def test_verify_and_replay_cover_both_groups(server: Server, admin: httpx.Client) -> None:
    for group in ("home", "blue"):
        tenant = tenant_in(admin, group)
        with server.client(issue_token(admin, tenant, "writer")["token"]) as client:
            put_value(client, tenant, "k", group)
    verified = cli(server, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    for group in ("home", "blue"):
        assert f"[{group}] ok      transparency logs" in verified.stdout
    replayed = cli(server, "replay")
    assert replayed.returncode == 0, replayed.stderr
    assert {line.split()[0] for line in replayed.stdout.splitlines()} == {"[home]", "[blue]"}


def test_tenants_stay_where_they_were_placed_across_a_restart(server: Server,
                                                              admin: httpx.Client) -> None:
    tenant = tenant_in(admin, "blue")
    writer = issue_token(admin, tenant, "writer")["token"]
    with server.client(writer) as client:
        put_value(client, tenant, "k", "before")
    server.restart()
    with server.client(writer) as client:
        assert client.get(secret_path(tenant, "k")).json()["value"] == "before"


def test_the_feed_of_every_tenant_streams_both_groups_and_resumes_from_an_event_id(
        server: Server, admin: httpx.Client) -> None:
    tenants = [tenant_in(admin, "home"), tenant_in(admin, "blue")]
    start = admin.get("/v1/changes", params={"after": "now"}).json()["cursor"]
    for tenant in tenants:
        put_value(admin, tenant, "k", tenant)
    only_writes = {"action": "write", "after": start}
    seen: list[tuple[str, str]] = []
    with admin.stream("GET", "/v1/changes", headers=SSE, params=only_writes) as stream:
        for kind, ident, data in sse_events(stream):
            if kind == "message":
                seen.append((data["tenant"], ident))
            if len(seen) == 2:
                break
    assert sorted(tenant for tenant, _ in seen) == sorted(tenants)
    with admin.stream("GET", "/v1/changes", params=only_writes,
                      headers={**SSE, "Last-Event-ID": seen[0][1]}) as stream:
        resumed = next(data["tenant"] for kind, _, data in sse_events(stream)
                       if kind == "message")
    assert resumed == seen[1][0]
    paged = admin.get("/v1/changes", params=only_writes).json()
    assert [item["tenant"] for item in paged["items"]] == [tenant for tenant, _ in seen]
    assert admin.get("/v1/changes", params={"after": "12"}).status_code == 400


def test_a_tenant_moves_while_clients_write_and_no_acknowledged_write_is_lost(
        server: Server, admin: httpx.Client) -> None:
    tenant = tenant_in(admin, "home")
    writer = issue_token(admin, tenant, "writer")["token"]
    acknowledged: dict[str, int] = {}
    refused: list[int] = []
    stop = threading.Event()

    def write(key: str) -> None:  # value n is version n if no write is lost or doubled
        with server.client(writer) as client:
            n = 1
            while not stop.is_set():
                response = client.put(secret_path(tenant, key), json={"value": n})
                if response.status_code == 503:  # retryable: it changed nothing
                    refused.append(n)
                    continue
                assert response.status_code in (200, 201), response.text
                acknowledged[key], n = n, n + 1

    writers = [threading.Thread(target=write, args=(f"k{i}",)) for i in range(4)]
    for thread in writers:
        thread.start()
    time.sleep(1)
    moved = cli(server, "tenant", "move", tenant, "--to", "blue")
    time.sleep(1)
    stop.set()
    for thread in writers:
        thread.join()
    assert moved.returncode == 0, moved.stderr
    assert f"moved {tenant} from home to blue" in moved.stdout
    with server.client(writer) as client:
        for key, n in acknowledged.items():
            read = client.get(secret_path(tenant, key)).json()
            assert (read["value"], read["version"]) == (n, n), key
    for check in (("verify", "--tenant", tenant), ("verify",), ("replay",)):
        done = cli(server, *check)  # both groups: the closed history and the one going on
        assert done.returncode == 0, (check, done.stdout, done.stderr)
