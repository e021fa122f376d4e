"""moto's own Secrets Manager tests, unmodified, against the ledger's AWS façade.

moto 5.2.5 ships its tests in the sdist only (``tests.peers.sdists``); they run in
moto's server mode against a real ``secrets-ledger serve --aws-port``, on SQLite and on
PostgreSQL, signing with the key pair of a real writer token. Two tiers are held to
every test passing:

- the core tier (102 tests: ``test_secretsmanager.py`` and ``test_list_secrets.py``
  without rotation, random passwords, word splitting, custom ids, AWS-managed secrets
  and the stage-mismatch case), the bar of the façade;
- GetRandomPassword (13 tests).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from secrets_ledger.core.signing_keys import aws_key_pair
from tests.e2e.helpers import BACKENDS, create_tenant, issue_token, running_server
from tests.peers.sdists import run_suite, sources

MOTO = "5.2.5"
FILES = ["tests/test_secretsmanager/test_secretsmanager.py",
         "tests/test_secretsmanager/test_list_secrets.py"]
CORE_TIER = ("not rotate and not random and not word_splitter and not custom_id"
             " and not aws_managed_secret and not stage_mismatch")
RANDOM_TIER = "random"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("tier", "expected"), [(CORE_TIER, 102), (RANDOM_TIER, 13)],
                         ids=["core-tier", "get-random-password"])
def test_moto_suite_passes_against_the_aws_facade(backend: str, tier: str, expected: int,
                                                  tmp_path: Path) -> None:
    root = sources("moto", MOTO, "tests/test_secretsmanager")
    with running_server(backend, tmp_path / "server") as server:
        with server.admin() as admin:
            tenant = create_tenant(admin)
            token = str(issue_token(admin, tenant, "writer")["token"])
        key_id, secret = aws_key_pair(token)
        outcomes = run_suite(root, "ledger_moto_plugin", [*FILES, "-k", tier], {
            "AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret,
            "AWS_MAX_ATTEMPTS": "1", "TEST_SERVER_MODE": "true",
            "TEST_SERVER_MODE_ENDPOINT": server.aws_url, "MOTO_CALL_RESET_API": "false"},
            tmp_path / "report.xml")
    failing = {name: outcome for name, outcome in outcomes.items() if outcome != "passed"}
    assert failing == {}
    assert len(outcomes) == expected
