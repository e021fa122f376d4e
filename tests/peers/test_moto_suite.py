"""moto's own Secrets Manager tests, unmodified, against the ledger's AWS façade.

moto 5.2.5 ships its tests in the sdist only: it is downloaded once (pinned, cached in
``~/.cache/secrets-ledger/peers``, or ``LEDGER_PEER_CACHE``) and run in moto's server
mode against a real ``secrets-ledger serve --aws-port``, on SQLite and on PostgreSQL,
signing with the key pair of a real writer token. A download that fails is a failure,
never a skip. Two tiers are held to every test passing:

- the core tier (102 tests: ``test_secretsmanager.py`` and ``test_list_secrets.py``
  without rotation, random passwords, word splitting, custom ids, AWS-managed secrets
  and the stage-mismatch case), the bar of the façade;
- GetRandomPassword (13 tests).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from secrets_ledger.core.signing_keys import aws_key_pair
from tests.e2e.helpers import BACKENDS, create_tenant, issue_token, running_server

MOTO = "5.2.5"
CACHE = Path(os.environ.get("LEDGER_PEER_CACHE",
                            Path.home() / ".cache" / "secrets-ledger" / "peers"))
PLUGINS = Path(__file__).with_name("plugins")
FILES = ["tests/test_secretsmanager/test_secretsmanager.py",
         "tests/test_secretsmanager/test_list_secrets.py"]
CORE_TIER = ("not rotate and not random and not word_splitter and not custom_id"
             " and not aws_managed_secret and not stage_mismatch")
RANDOM_TIER = "random"
RUN_TIMEOUT = 900


def moto_sources() -> Path:
    """moto's sdist, unpacked (downloaded on first use)."""
    root = CACHE / f"moto-{MOTO}"
    if (root / "tests" / "test_secretsmanager").is_dir():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        download = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary",
             ":all:", f"moto=={MOTO}", "-d", scratch], capture_output=True, text=True,
            timeout=600, check=False)
        if download.returncode != 0:
            pytest.fail(f"could not download moto {MOTO}'s sdist:\n{download.stderr}",
                        pytrace=False)
        with tarfile.open(Path(scratch) / f"moto-{MOTO}.tar.gz") as archive:
            archive.extractall(scratch, filter="data")
        shutil.move(str(Path(scratch) / f"moto-{MOTO}"), root)
    return root


def run_tier(root: Path, endpoint: str, token: str, tier: str, report: Path
             ) -> dict[str, str]:
    """Runs moto's tests selected by ``tier``; the outcome of each, by test id."""
    key_id, secret = aws_key_pair(token)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LEDGER_", "AWS_", "MOTO_")) and k != "PYTHONPATH"}
    env.update(AWS_ACCESS_KEY_ID=key_id, AWS_SECRET_ACCESS_KEY=secret, AWS_MAX_ATTEMPTS="1",
               TEST_SERVER_MODE="true", TEST_SERVER_MODE_ENDPOINT=endpoint,
               MOTO_CALL_RESET_API="false", PYTHONPATH=str(PLUGINS))
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "ledger_moto_plugin",
         "-o", "addopts=", "-q", *FILES, "-k", tier, f"--junitxml={report}"],
        cwd=root, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    if not report.exists():
        pytest.fail(f"moto's tests did not run:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}",
                    pytrace=False)
    outcomes = {}
    # The report is the one our own subprocess just wrote, not untrusted input.
    for case in ET.parse(report).getroot().iter("testcase"):  # noqa: S314
        failed = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[f"{case.get('classname')}::{case.get('name')}"] = (
            failed[0] if failed else "passed")
    if any(outcome != "passed" for outcome in outcomes.values()):
        print(done.stdout[-20000:])  # shown by pytest with the failure
    return outcomes


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("tier", "expected"), [(CORE_TIER, 102), (RANDOM_TIER, 13)],
                         ids=["core-tier", "get-random-password"])
def test_moto_suite_passes_against_the_aws_facade(backend: str, tier: str, expected: int,
                                                  tmp_path: Path) -> None:
    root = moto_sources()
    with running_server(backend, tmp_path / "server") as server:
        with server.admin() as admin:
            tenant = create_tenant(admin)
            token = str(issue_token(admin, tenant, "writer")["token"])
        outcomes = run_tier(root, server.aws_url, token, tier, tmp_path / "report.xml")
    failing = {name: outcome for name, outcome in outcomes.items() if outcome != "passed"}
    assert failing == {}
    assert len(outcomes) == expected
