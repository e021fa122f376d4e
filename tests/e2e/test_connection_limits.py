"""Connection limits over real sockets against ``serve``: a request whose headers or body
trickle in is cut off after its deadline, and past the connection cap requests are
answered 503 at once while ``/healthz`` still answers. (The front end's limits; storage
plays no part, so one backend.)"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.e2e.helpers import Server

LIMITS = {"LEDGER_HEADER_TIMEOUT": "1", "LEDGER_BODY_TIMEOUT": "1",
          "LEDGER_MAX_CONNECTIONS": "8"}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("limits")
    (root / "data").mkdir()
    server = Server("sqlite", root / "data", root / "serve.log", extra_env=dict(LIMITS))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def connect(server: Server, first_bytes: bytes) -> socket.socket:
    conn = socket.create_connection((server.host, server.port), timeout=10)
    conn.sendall(first_bytes)
    return conn


def closed_within(conn: socket.socket, seconds: float) -> float | None:
    """How long the server took to close the connection (None: still open)."""
    start = time.monotonic()
    conn.settimeout(seconds)
    try:
        while conn.recv(4096):
            pass  # a 400 or 408 the server may send before closing
    except TimeoutError:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - start


def test_headers_that_trickle_in_are_cut_off(limited: Server) -> None:
    conn = connect(limited, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    with conn:
        assert closed_within(conn, 5) is not None


def test_a_body_that_trickles_in_is_cut_off(limited: Server) -> None:
    conn = connect(limited, b"PUT /v1/tenants/t/secrets/k HTTP/1.1\r\nHost: x\r\n"
                            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
    with conn:
        assert closed_within(conn, 5) is not None


def test_at_the_cap_a_new_connection_evicts_the_oldest_slow_one(limited: Server) -> None:
    slow = [connect(limited, b"GET /healthz HTTP/1.1\r\nX-Slow: ") for _ in range(12)]
    try:
        time.sleep(0.3)
        evicted = [conn for conn in slow if closed_within(conn, 0.05) is not None]
        assert len(evicted) >= 4
        assert evicted == slow[:len(evicted)]  # the oldest first
        assert httpx.get(f"{limited.base_url}/healthz", timeout=5).status_code == 200
    finally:
        for conn in slow:
            conn.close()


def test_past_the_cap_of_busy_connections_requests_are_503_and_healthz_answers(
        limited: Server) -> None:
    # Requests whose bodies are on their way: busy connections, which count.
    held = [connect(limited, b"PUT /v1/tenants/t/secrets/k HTTP/1.1\r\nHost: x\r\n"
                             b"Content-Length: 100\r\n\r\n") for _ in range(10)]
    try:
        time.sleep(0.2)
        busy = httpx.get(f"{limited.base_url}/v1/tenants", timeout=5)
        assert busy.status_code == 503
        assert httpx.get(f"{limited.base_url}/healthz", timeout=5).status_code == 200
    finally:
        for conn in held:
            conn.close()
    time.sleep(0.2)
    assert httpx.get(f"{limited.base_url}/v1/tenants", timeout=5).status_code == 401


@pytest.mark.parametrize("port", ["aws_port", "vault_port"])
def test_the_facades_cut_off_trickling_headers_and_bodies(limited: Server, port: str) -> None:
    address = (limited.host, getattr(limited, port))
    for first_bytes in (b"POST / HTTP/1.1\r\nHost: x\r\nX-Slow: ",
                        b"POST /v1/kv/data/k HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
                        b"\r\n{"):
        conn = socket.create_connection(address, timeout=10)
        conn.sendall(first_bytes)
        with conn:
            assert closed_within(conn, 5) is not None, (port, first_bytes)
