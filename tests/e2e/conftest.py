"""Fixtures for the end-to-end suite.

``server`` runs the real ``secrets-ledger serve`` as a subprocess on a free port, once
per test module and backend (SQLite in a temporary data directory; PostgreSQL in a
fresh schema of ``LEDGER_TEST_DATABASE_URL``, dropped afterwards). Tests sharing a
server stay independent: each one works in tenants of its own (``tenant``).
An unreachable PostgreSQL fails these tests; it never skips them.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import (
    BACKENDS,
    Server,
    create_tenant,
    issue_token,
    running_server,
)


@pytest.fixture(scope="module", params=BACKENDS)
def server(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    backend = str(request.param)
    with running_server(backend, tmp_path_factory.mktemp(f"e2e-{backend}")) as running:
        yield running


@pytest.fixture
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.admin() as client:
        yield client


@pytest.fixture
def tenant(admin: httpx.Client) -> str:
    """A new tenant of this test's own."""
    return create_tenant(admin)


def _token(admin: httpx.Client, tenant: str, role: str) -> dict[str, Any]:
    return issue_token(admin, tenant, role)


@pytest.fixture
def writer_token(admin: httpx.Client, tenant: str) -> dict[str, Any]:
    return _token(admin, tenant, "writer")


@pytest.fixture
def reader_token(admin: httpx.Client, tenant: str) -> dict[str, Any]:
    return _token(admin, tenant, "reader")


@pytest.fixture
def auditor_token(admin: httpx.Client, tenant: str) -> dict[str, Any]:
    return _token(admin, tenant, "auditor")


@pytest.fixture
def writer(server: Server, writer_token: dict[str, Any]) -> Iterator[httpx.Client]:
    with server.client(writer_token["token"]) as client:
        yield client


@pytest.fixture
def reader(server: Server, reader_token: dict[str, Any]) -> Iterator[httpx.Client]:
    with server.client(reader_token["token"]) as client:
        yield client


@pytest.fixture
def auditor(server: Server, auditor_token: dict[str, Any]) -> Iterator[httpx.Client]:
    with server.client(auditor_token["token"]) as client:
        yield client


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failing test's report ends with the tail of the server's log."""
    report = yield
    running = getattr(item, "funcargs", {}).get("server")
    if report.failed and isinstance(running, Server) and running.log_path.exists():
        tail = "\n".join(running.log_text().splitlines()[-60:])
        report.sections.append(("secrets-ledger serve log (tail)", tail))
    return report
