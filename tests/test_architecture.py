"""The shape of the code, checked: layers import downward only (the contracts in
pyproject.toml, run by import-linter), no front end checks a permission, nothing outside
the adapters picks a backend, and every module reads in one sitting."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("domain", "core", "adapters", "projections", "api", "migrations")
MAX_MODULE_LINES = 300


def sources(*layers: str) -> list[Path]:
    return sorted(path for layer in layers for path in (ROOT / layer).rglob("*.py"))


def test_the_layers_import_downward_only() -> None:
    linted = subprocess.run([Path(sys.executable).with_name("lint-imports")], cwd=ROOT,
                            capture_output=True, text=True, timeout=300, check=False)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "0 broken" in linted.stdout


def test_no_front_end_checks_a_permission() -> None:
    """Front ends authenticate and translate; the core admits (``policy.authorize``)."""
    offending = [f"{path.relative_to(ROOT)}:{n}" for path in sources("api")
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if re.search(r"\bauthorize\(|\bPOLICY\b|\bPermission\b|\bNEEDS\b", line)]
    assert offending == []


def test_nothing_outside_the_adapters_names_a_backend() -> None:
    pattern = re.compile(r"dialect|[\"'](postgres|postgresql|sqlite)[\"']|database_url")
    offending = [f"{path.relative_to(ROOT)}:{n}" for path in sources("domain", "projections",
                                                                     "api", "core")
                 for n, line in enumerate(path.read_text().splitlines(), 1)
                 if pattern.search(line) and path.name != "settings.py"]
    assert offending == []


def test_every_module_reads_in_one_sitting() -> None:
    long = {str(path.relative_to(ROOT)): lines for path in sources(*LAYERS)
            if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES}
    assert long == {}
