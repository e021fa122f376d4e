"""Property-based fuzzing of every operation in the server's own OpenAPI document.

Runs against a server on each backend (PostgreSQL answers plain reads and writes in the
group-commit writer's batches, SQLite in threads) with the admin token and checks only
that no request, however odd, makes the server fail with a 5xx.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig

from secrets_ledger.core.changes import MAX_WAIT
from tests.e2e.helpers import Server, create_tenant, put_value, running_server

EXAMPLES_PER_OPERATION = 30


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fuzz_server(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(request.param, tmp_path_factory.mktemp("e2e-fuzz")) as running:
        yield running


@pytest.fixture(scope="module")
def fuzz_tenant(fuzz_server: Server) -> str:
    """A tenant with a few secrets, so that generated requests reach past the 404s."""
    with fuzz_server.admin() as admin:
        tenant = create_tenant(admin)
        for key in ("a", "b/c", "vapi/privateApiKey"):
            put_value(admin, tenant, key, {"v": key})
            put_value(admin, tenant, key, {"v": key, "n": 2})
    return tenant


@pytest.fixture(scope="module")
def api_schema(fuzz_server: Server) -> Any:
    config = SchemathesisConfig.from_dict({
        "phases": {
            "coverage": {"enabled": False},
            "stateful": {"enabled": False},
        },
        "generation": {"max-examples": EXAMPLES_PER_OPERATION},
        "headers": {"Authorization": f"Bearer {fuzz_server.admin_token}"},
    })
    return schemathesis.openapi.from_url(f"{fuzz_server.base_url}/openapi.json",
                                         config=config, timeout=30)


def test_openapi_document_describes_the_contract(fuzz_server: Server) -> None:
    document = httpx.get(f"{fuzz_server.base_url}/openapi.json").json()
    paths = document["paths"]
    for path, methods in {
        "/v1/tenants": {"get", "post"},
        "/v1/tenants/{tenant}": {"delete"},
        "/v1/tenants/{tenant}/tokens": {"post"},
        "/v1/tenants/{tenant}/tokens/{token_id}": {"delete"},
        "/v1/tenants/{tenant}/keys/rotate": {"post"},
        "/v1/tenants/{tenant}/secrets": {"get"},
        "/v1/tenants/{tenant}/secrets/{key}": {"get", "put", "delete"},
        "/v1/tenants/{tenant}/secrets/{key}/versions": {"get"},
        "/v1/tenants/{tenant}/secrets/{key}/undelete": {"post"},
        "/v1/tenants/{tenant}/secrets/{key}/rollback": {"post"},
        "/v1/tenants/{tenant}/secrets/{key}/destroy": {"post"},
        "/v1/tenants/{tenant}/transactions": {"post"},
        "/v1/tenants/{tenant}/audit": {"get"},
        "/v1/tenants/{tenant}/verify": {"get"},
        "/v1/tenants/{tenant}/changes": {"get"},
        "/v1/changes": {"get"},
        "/healthz": {"get"},
        "/readyz": {"get"},
        "/metrics": {"get"},
    }.items():
        assert path in paths, (path, sorted(paths))
        assert methods <= set(paths[path]), (path, sorted(paths[path]))


def test_no_request_makes_a_server_error(api_schema: Any, fuzz_server: Server,
                                         fuzz_tenant: str) -> None:
    headers = {"Authorization": f"Bearer {fuzz_server.admin_token}"}
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        fixed = {"tenant": fuzz_tenant} if "{tenant}" in operation.path else None
        cases = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE, path_parameters=fixed),
            operation.as_strategy(GenerationMode.NEGATIVE, path_parameters=fixed),
            operation.as_strategy(GenerationMode.POSITIVE),
        )

        @given(case=cases)
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  phases=[Phase.explicit, Phase.generate],
                  suppress_health_check=list(HealthCheck))
        def run(case: Any) -> None:
            response = case.call_and_validate(base_url=fuzz_server.base_url,
                                              headers=headers, checks=[not_a_server_error],
                                              timeout=MAX_WAIT + 30)  # a long poll's wait
            statuses[response.status_code] += 1

        try:
            run()
        except Exception as error:  # collect, so that every operation gets its turn
            failures.append(f"{operation.label}: {error}")
    assert operations >= 15
    assert not failures, "\n\n".join(failures)
    print(f"fuzzed {operations} operations: {sorted(statuses.items())}")
    assert sum(statuses.values()) >= operations * 5
    assert any(200 <= status < 300 for status in statuses), statuses
