"""Fixtures: every storage test runs on SQLite and on a real PostgreSQL server.

PostgreSQL comes from LEDGER_TEST_DATABASE_URL (default: the local server's database
``test``). Each test gets a schema of its own, dropped afterwards. An unreachable
server fails the run: storage tests never skip quietly.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from pydantic import SecretStr

from secrets_ledger.core.settings import GroupStore, Settings
from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.grouped_runtime import GroupedRuntime
from secrets_ledger.runtime import LedgerRuntime
from tests.pg_instance import PostgresInstance
from tests.support import RUNNERS, Blocking

PG_URL = os.environ.get(
    "LEDGER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
# Tenant groups (``grouped``): the second group's storage, a schema of the tests' database
# or of a PostgreSQL server of its own.
BACKENDS = ["sqlite", "postgres"]


def make_settings(backend: str, data_dir: Path, schema: str | None = None) -> Settings:
    if backend == "sqlite":
        return Settings(data_dir=data_dir)
    return Settings(data_dir=data_dir, database_url=PG_URL, database_schema=schema)


@pytest.fixture(scope="session", autouse=True)
def _event_loops() -> Iterator[None]:
    """The event loops ``tests.support.run`` kept, one per thread, closed at the end."""
    yield
    for runner in RUNNERS:
        runner.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def pg_schema(backend: str) -> Iterator[str | None]:
    if backend == "sqlite":
        yield None
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    yield schema
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def settings(backend: str, pg_schema: str | None, tmp_path: Path) -> Settings:
    return make_settings(backend, tmp_path / "data", pg_schema)


@pytest.fixture
def runtime(settings: Settings) -> Iterator[LedgerRuntime]:
    rt = LedgerRuntime(settings)
    yield rt
    rt.close()


@pytest.fixture
def ledger(runtime: LedgerRuntime) -> Blocking:
    """The core's use cases, blocking, as the admin the test's context names."""
    return Blocking(runtime.ledger)


def _drop(url: str, schema: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="module", params=["two schemas", "two servers"])
def second_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """Where the second group is stored: the tests' database, or a server of its own."""
    if request.param == "two schemas":
        yield PG_URL
        return
    with PostgresInstance() as instance:
        yield instance.url


@pytest.fixture
def grouped_settings(second_url: str, tmp_path: Path) -> Iterator[Settings]:
    home, other = (f"g_{uuid.uuid4().hex[:12]}" for _ in range(2))
    yield Settings(data_dir=tmp_path / "data", database_url=SecretStr(PG_URL),
                   database_schema=home, groups={"blue": GroupStore(
                       database_url=SecretStr(second_url), database_schema=other)})
    _drop(PG_URL, home)
    _drop(second_url, other)


@pytest.fixture
def grouped(grouped_settings: Settings) -> Iterator[GroupedRuntime]:
    with GroupedRuntime(grouped_settings) as runtime:
        yield runtime


@pytest.fixture
def ctx() -> RequestContext:
    return RequestContext(actor="tok_test", request_id=f"req-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def tenant(ledger: Blocking, ctx: RequestContext) -> str:
    ledger.open_tenant("acme", ctx)
    return "acme"
