"""hvac's own KV v2 integration tests (84 cases), unmodified, against the ledger's Vault
façade: on SQLite and PostgreSQL, once with a tenant's writer token and once with an
admin token naming the tenant in ``X-Vault-Namespace``. hvac 2.4.0 ships them in its
sdist only (``tests.peers.sdists``); the plugin replaces the ``vault`` binary hvac's
base class would start with a client of the façade."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.helpers import BACKENDS, create_tenant, issue_token, running_server
from tests.peers.sdists import run_suite, sources

HVAC = "2.4.0"
KV_V2 = "tests/integration_tests/api/secrets_engines/test_kv_v2.py"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ["tenant-token", "admin-token-and-namespace"])
def test_hvac_kv_v2_suite_passes_against_the_vault_facade(backend: str, mode: str,
                                                          tmp_path: Path) -> None:
    root = sources("hvac", HVAC, "tests/integration_tests")
    with running_server(backend, tmp_path / "server") as server:
        with server.admin() as admin:
            tenant = create_tenant(admin)
            writer = str(issue_token(admin, tenant, "writer")["token"])
        env = {"VAULT_ADDR": server.vault_url, "VAULT_TOKEN": writer}
        if mode != "tenant-token":
            env.update(VAULT_TOKEN=server.admin_token, VAULT_NAMESPACE=tenant)
        outcomes = run_suite(root, "ledger_hvac_plugin", [KV_V2], env, tmp_path / "report.xml")
    failing = {name: outcome for name, outcome in outcomes.items() if outcome != "passed"}
    assert failing == {}
    assert len(outcomes) == 84
