"""A database URL that is wrong in any way: one line on stderr naming the kind of failure,
exit 2, no traceback, and never the password (``serve`` and the other commands alike)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.conftest import PG_URL

CLI = [sys.executable, "-m", "secrets_ledger.api.cli"]
PASSWORD = "SuperSecretPw"
PG = urlsplit(PG_URL)
SERVER = f"{PG.hostname}:{PG.port or 5432}"

CASES = {
    "no scheme": (f"ledger:{PASSWORD}@db:5432/ledger", "must be a postgresql:// URL"),
    "another database": (f"mysql://u:{PASSWORD}@db/ledger", "must be a postgresql:// URL"),
    "not a url": ("not a url", "must be a postgresql:// URL"),
    "bad port": (f"postgresql://u:{PASSWORD}@db:99999/x", "is not a valid URL"),
    "refused": (f"postgresql://u:{PASSWORD}@127.0.0.1:1/test", "refused the connection"),
    "no database": (f"postgresql://postgres:{PASSWORD}@{SERVER}/no_such_db_here",
                    "the database does not exist"),
    "bad credentials": (f"postgresql://no_such_role:{PASSWORD}@{SERVER}/test",
                        "refused the credentials"),
}


@pytest.mark.parametrize("command", [("tenant", "list"), ("serve", "--port", "0")])
@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_database_url_is_one_line_without_the_password(
        tmp_path: Path, case: str, command: tuple[str, ...]) -> None:
    url, expected = CASES[case]
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(LEDGER_DATA_DIR=str(tmp_path / "data"), LEDGER_DATABASE_URL=url)
    done = subprocess.run([*CLI, *command], env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert expected in done.stderr
    assert "Traceback" not in done.stderr
    assert PASSWORD not in done.stderr + done.stdout
