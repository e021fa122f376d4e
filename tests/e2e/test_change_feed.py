"""The change feed over real HTTP (uvicorn, both backends): pages, long polls and
Server-Sent Events; resumed from a cursor after a disconnect, a restart and a slow
subscriber's cut-off, with every change once and in order; 200 subscribers on one
server cost no thread each."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from secrets_ledger.api.rest.client import FeedChange, LedgerClient
from secrets_ledger.core.door import QUERY_THREADS
from tests.e2e.helpers import (
    Server,
    assert_problem,
    create_tenant,
    get_json,
    issue_token,
    put_value,
    running_server,
)

SSE = {"Accept": "text/event-stream"}


def changes_path(tenant: str) -> str:
    return f"/v1/tenants/{tenant}/changes"


def sse_events(response: httpx.Response) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(event type, id, data) of each event of a stream."""
    kind, ident, data = "message", "", ""
    for line in response.iter_lines():
        if not line:
            if data:
                yield kind, ident, json.loads(data)
            kind, data = "message", ""
        elif line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("id: "):
            ident = line[4:]
        elif line.startswith("data: "):
            data = line[6:]


def test_a_reader_pages_through_changes_without_values(server: Server, admin: httpx.Client,
                                                       tenant: str) -> None:
    put_value(admin, tenant, "db/password", "hunter2")
    put_value(admin, tenant, "db/password", "hunter3")
    with server.client(issue_token(admin, tenant, "reader")["token"]) as reader:
        page = get_json(reader, changes_path(tenant))
    assert [(i["action"], i["key"], i["version"]) for i in page["items"]] == [
        ("tenant_opened", None, None), ("write", "db/password", 1),
        ("write", "db/password", 2), ("token_created", None, None)]
    assert "hunter" not in json.dumps(page)
    again = get_json(admin, changes_path(tenant), after=page["items"][0]["position"])
    assert again["items"] == page["items"][1:] and again["cursor"] == page["cursor"]


def test_a_long_poll_returns_when_a_change_commits(server: Server, admin: httpx.Client,
                                                   tenant: str) -> None:
    cursor = get_json(admin, changes_path(tenant), after="now")["cursor"]
    threading.Timer(0.5, put_value, (admin, tenant, "late", "v")).start()
    started = time.monotonic()
    page = get_json(admin, changes_path(tenant), after=cursor, wait=30)
    assert [i["key"] for i in page["items"]] == ["late"]
    assert 0.4 < time.monotonic() - started < 10


def test_bad_feed_requests_are_clear_4xx(server: Server, admin: httpx.Client,
                                         tenant: str) -> None:
    for params in ({"after": "x"}, {"after": "-3"}, {"after": str(2**62)}, {"wait": 61},
                   {"action": "read"}, {"limit": 0}, {"prefix": "a b"}):
        assert_problem(admin.get(changes_path(tenant), params=params), 400, "invalid_request")
    writer = issue_token(admin, tenant, "writer")["token"]
    with server.client(writer) as client:
        assert_problem(client.get(changes_path(tenant)), 403, "forbidden")
        assert_problem(client.get("/v1/changes"), 403, "forbidden")


def test_server_sent_events_resume_with_last_event_id(server: Server, admin: httpx.Client,
                                                      tenant: str) -> None:
    for n in range(3):
        put_value(admin, tenant, f"k{n}", "v")
    seen: list[tuple[str, str]] = []
    with admin.stream("GET", changes_path(tenant), headers=SSE, params={"prefix": "k"}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        for kind, ident, data in sse_events(r):
            if kind == "heartbeat":  # may come at any time: a cursor, no change
                continue
            assert kind == "message" and ident == str(data["position"])
            seen.append((data["key"], ident))
            if len(seen) == 2:
                break
    put_value(admin, tenant, "k3", "v")
    resumed: list[str] = []
    with admin.stream("GET", changes_path(tenant),
                      headers={**SSE, "Last-Event-ID": seen[-1][1]}, params={"prefix": "k"}) as r:
        for kind, _, data in sse_events(r):
            if kind == "heartbeat":
                continue
            resumed.append(data["key"])
            if len(resumed) == 2:
                break
    assert [key for key, _ in seen] + resumed == ["k0", "k1", "k2", "k3"]


def test_the_client_follows_across_a_restart_with_every_change_once(
        server: Server, admin: httpx.Client, tenant: str) -> None:
    reader = LedgerClient(server.base_url, issue_token(admin, tenant, "reader")["token"],
                          tenant)
    got: list[FeedChange] = []
    done = threading.Event()

    def follow() -> None:
        for change in reader.follow_changes(prefix="n/", retry_delay=0.2):
            got.append(change)
            if len(got) == 10:
                done.set()
                return

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    for n in range(5):
        put_value(admin, tenant, f"n/{n}", "v")
    server.restart()
    with server.admin() as again:
        for n in range(5, 10):
            put_value(again, tenant, f"n/{n}", "v")
    assert done.wait(60), [c.key for c in got]
    assert [c.key for c in got] == [f"n/{n}" for n in range(10)]
    positions = [c.position for c in got]
    assert positions == sorted(set(positions))
    reader.close()


def test_two_hundred_subscribers_cost_no_thread_each(server: Server, admin: httpx.Client,
                                                     tenant: str) -> None:
    assert server.proc is not None
    threads_before = _threads(server.proc.pid)
    cursor = get_json(admin, changes_path(tenant), after="now")["cursor"]

    async def subscribe_all() -> list[list[str]]:
        limits = httpx.Limits(max_connections=250)
        async with httpx.AsyncClient(base_url=server.base_url, limits=limits, timeout=60,
                                     headers={"Authorization": admin.headers["Authorization"],
                                              **SSE}) as client:
            ready = asyncio.Semaphore(0)

            async def one() -> list[str]:
                keys: list[str] = []
                async with client.stream("GET", changes_path(tenant),
                                         params={"after": cursor}) as response:
                    ready.release()
                    async for line in response.aiter_lines():
                        if line.startswith("data: ") and '"key"' in line:
                            keys.append(json.loads(line[6:])["key"])
                            if len(keys) == 5:
                                return keys
                return keys

            tasks = [asyncio.ensure_future(one()) for _ in range(200)]
            for _ in tasks:
                await asyncio.wait_for(ready.acquire(), 60)
            threads_during.append(_threads(server.proc.pid))  # type: ignore[union-attr]
            await asyncio.to_thread(lambda: [put_value(admin, tenant, f"fan/{n}", "v")
                                             for n in range(5)])
            return await asyncio.wait_for(asyncio.gather(*tasks), 60)

    threads_during: list[int] = []
    results = asyncio.run(subscribe_all())
    assert all(keys == [f"fan/{n}" for n in range(5)] for keys in results)
    # The core's query pool may grow to its bound while they are admitted; no more.
    assert threads_during[0] - threads_before <= QUERY_THREADS + 2


def test_a_slow_subscriber_is_cut_off_and_resumes(tmp_path: Path) -> None:
    with running_server("sqlite", tmp_path) as server:
        server.extra_env["LEDGER_SEND_TIMEOUT"] = "1"
        server.restart()
        with server.admin() as admin:
            tenant = create_tenant(admin)
            last_key = _six_megabytes_of_changes(admin, tenant)
            raw = _unread_stream(server, tenant)  # from the first: read from the store
            time.sleep(4)  # longer than the send timeout, reading nothing
            received = _drain(raw)
            assert last_key.encode() not in received
            _resumes_after_what_arrived(admin, tenant, received)


def test_a_caught_up_subscriber_that_stops_reading_is_refused_then_cut_off(
        tmp_path: Path) -> None:
    with running_server("sqlite", tmp_path) as server:
        server.extra_env["LEDGER_SEND_TIMEOUT"] = "1"
        server.restart()
        with server.admin() as admin:
            tenant = create_tenant(admin)
            raw = _unread_stream(server, tenant, after=get_json(
                admin, changes_path(tenant), after="now")["cursor"])
            time.sleep(0.5)  # caught up: the fan-out writes its pages itself
            _six_megabytes_of_changes(admin, tenant)
            time.sleep(4)
            received = _drain(raw)
            metrics = admin.get("/metrics").text
            _resumes_after_what_arrived(admin, tenant, received)
    assert _metric(metrics, "ledger_feed_delivered_pages") > 0
    assert _metric(metrics, "ledger_feed_refused_pages") > 0


BULK_KEYS = [f"bulk/{batch:03}/{n:02}/" + "k" * 140 for batch in range(100) for n in range(100)]


def _six_megabytes_of_changes(admin: httpx.Client, tenant: str) -> str:
    """More than the kernel's socket buffers take (4 MB); the last change's key."""
    long_id = "r" * 128
    for batch in range(100):
        operations = [{"op": "set", "key": key, "value": "v"}
                      for key in BULK_KEYS[batch * 100:(batch + 1) * 100]]
        response = admin.post(f"/v1/tenants/{tenant}/transactions",
                              json={"operations": operations},
                              headers={"X-Request-Id": long_id})
        assert response.status_code == 200, response.text
    return BULK_KEYS[-1]


def _resumes_after_what_arrived(admin: httpx.Client, tenant: str, received: bytes) -> None:
    """The events that arrived whole, then the changes after the last one's id: every
    change once, in order."""
    whole = [dict(line.split(b": ", 1) for line in event.split(b"\n") if b": " in line)
             for event in received.split(b"\r\n\r\n", 1)[1].split(b"\n\n")[:-1]]
    arrived = [event for event in whole if b"id" in event and b"event" not in event]
    keys = [json.loads(event[b"data"])["key"] for event in arrived]
    cursor = arrived[-1][b"id"].decode()
    while page := get_json(admin, changes_path(tenant), after=cursor, prefix="bulk/",
                           limit=1000):
        if not page["items"]:
            break
        keys += [item["key"] for item in page["items"]]
        cursor = page["cursor"]
    assert keys == BULK_KEYS


def _metric(text: str, name: str) -> float:
    return float(next(line.split()[1] for line in text.splitlines()
                      if line.startswith(name + " ")))


def _unread_stream(server: Server, tenant: str, after: str = "0") -> socket.socket:
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect((server.host, server.port))
    raw.sendall(f"GET {changes_path(tenant)}?prefix=bulk/&after={after} HTTP/1.1\r\n"
                "Host: x\r\n"
                f"Authorization: Bearer {server.admin_token}\r\n"
                "Accept: text/event-stream\r\n\r\n".encode())
    return raw


def _drain(raw: socket.socket) -> bytes:
    """Everything the server sent before it closed the connection."""
    raw.settimeout(10)
    chunks = []
    try:
        while chunk := raw.recv(65536):
            chunks.append(chunk)
    except TimeoutError:
        raise AssertionError(f"not cut off: {sum(map(len, chunks))} bytes") from None
    raw.close()
    return b"".join(chunks)


def _threads(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError("no thread count")


@pytest.mark.parametrize("backend", ["postgres"])
def test_a_subscriber_of_one_process_sees_what_another_wrote(
        backend: str, tmp_path: Path) -> None:
    with running_server(backend, tmp_path / "a") as first:
        second = Server(backend, tmp_path / "b", tmp_path / "b.log", schema=first.schema,
                        admin_token=first.admin_token)
        second.data_dir.mkdir(parents=True)
        second.extra_env = {"LEDGER_MASTER_KEY": (first.data_dir / "master.key").read_text()
                            .strip()} if (first.data_dir / "master.key").exists() else {}
        second.start()
        try:
            with first.admin() as admin, second.admin() as other:
                tenant = create_tenant(admin)
                cursor = get_json(other, changes_path(tenant), after="now")["cursor"]
                threading.Timer(0.5, put_value, (admin, tenant, "from-first", "v")).start()
                page = get_json(other, changes_path(tenant), after=cursor, wait=30)
                assert [i["key"] for i in page["items"]] == ["from-first"]
        finally:
            second.stop()


def test_a_key_read_after_its_change_is_at_least_that_version(
        server: Server, admin: httpx.Client, tenant: str) -> None:
    reader_token = issue_token(admin, tenant, "reader")["token"]
    reader = LedgerClient(server.base_url, reader_token, tenant)

    def write() -> None:
        for n in range(20):
            put_value(admin, tenant, "hot", f"v{n}")

    writer = threading.Thread(target=write)
    writer.start()
    checked = 0
    with server.client(reader_token) as raw:
        for change in reader.follow_changes(prefix="hot"):
            read = raw.get(f"/v1/tenants/{tenant}/secrets/hot")
            assert read.status_code == 200 and read.json()["version"] >= change.version
            checked += 1
            if change.version == 20:
                break
    writer.join()
    reader.close()
    assert checked == 20


def test_an_admin_follows_every_tenant_and_a_tenant_token_may_not(
        server: Server, admin: httpx.Client) -> None:
    cursor = get_json(admin, "/v1/changes", after="now")["cursor"]
    first, second = create_tenant(admin), create_tenant(admin)
    put_value(admin, second, "k", "v")
    put_value(admin, first, "k", "v")
    page = get_json(admin, "/v1/changes", after=cursor, prefix="k")
    assert [(i["tenant"], i["key"]) for i in page["items"]] == [(second, "k"), (first, "k")]
    with server.client(issue_token(admin, first, "auditor")["token"]) as auditor:
        assert_problem(auditor.get("/v1/changes"), 403, "forbidden")
        assert_problem(auditor.get(changes_path(second)), 404, "tenant_not_found")
