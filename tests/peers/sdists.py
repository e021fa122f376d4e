"""The peers' test trees, from their pinned sdists: downloaded once, unpacked into
``~/.cache/secrets-ledger/peers`` (or ``LEDGER_PEER_CACHE``). A failed download fails
the test that needs it, never skips it."""

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

CACHE = Path(os.environ.get("LEDGER_PEER_CACHE",
                            Path.home() / ".cache" / "secrets-ledger" / "peers"))
PLUGINS = Path(__file__).with_name("plugins")
RUN_TIMEOUT = 900


def sources(project: str, version: str, marker: str) -> Path:
    """``project``'s sdist of ``version``, unpacked; ``marker`` is a folder it must hold."""
    root = CACHE / f"{project}-{version}"
    if (root / marker).is_dir():
        return root
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        download = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary",
             ":all:", f"{project}=={version}", "-d", scratch], capture_output=True, text=True,
            timeout=600, check=False)
        if download.returncode != 0:
            pytest.fail(f"could not download {project} {version}'s sdist:\n{download.stderr}",
                        pytrace=False)
        with tarfile.open(Path(scratch) / f"{project}-{version}.tar.gz") as archive:
            archive.extractall(scratch, filter="data")
        shutil.rmtree(root, ignore_errors=True)
        shutil.move(str(Path(scratch) / f"{project}-{version}"), root)
    return root


def run_suite(root: Path, plugin: str, args: list[str], env: dict[str, str], report: Path
              ) -> dict[str, str]:
    """Runs the peer's pytest with the plugin; the outcome of each test, by test id."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("LEDGER_", "AWS_", "MOTO_", "VAULT_")) and k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", plugin,
         "-o", "addopts=", "-q", *args, f"--junitxml={report}"],
        cwd=root, env={**clean, **env, "PYTHONPATH": str(PLUGINS)}, capture_output=True,
        text=True, timeout=RUN_TIMEOUT, check=False)
    if not report.exists():
        pytest.fail(f"the suite did not run:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}",
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
