"""The built distribution: a wheel made from the checkout installs into a fresh virtual
environment outside it, claims one import name, and serves (both backends)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.e2e.helpers import BACKENDS, create_tenant, issue_token, running_server

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("domain", "core", "adapters", "projections", "api", "migrations")


def _run(*argv: str | Path, cwd: Path) -> str:
    done = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 0, f"{argv}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built from a copy of the checkout's files (what a clean clone holds, links
    included), so that the build leaves nothing in the checkout."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    listed = _run("git", "ls-files", "--cached", "--others", "--exclude-standard", cwd=ROOT)
    for name in listed.split():
        path, copy = ROOT / name, source / name
        copy.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():
            copy.symlink_to(path.readlink())
        elif path.is_file():
            shutil.copy2(path, copy)
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", out, source, cwd=out)
    [built] = out.glob("secrets_ledger-*.whl")
    return built


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment, outside the checkout, with only the wheel and its
    dependencies; its ``bin`` folder."""
    venv = tmp_path_factory.mktemp("venv")
    _run(sys.base_prefix + "/bin/python3", "-m", "venv", "--without-pip", venv, cwd=venv)
    # This environment's pip installs into the new one (no pip of its own to set up).
    _run(sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q",
         "--no-compile", wheel, cwd=venv)
    return venv / "bin"


def test_the_wheel_holds_every_module_and_migration_under_one_name(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names if ".dist-info/" not in name} == {
        "secrets_ledger"}
    tracked = _run("git", "ls-files", *(f"{layer}/*" for layer in LAYERS), cwd=ROOT).split()
    shipped = [path for path in tracked if path.endswith((".py", ".sql"))]
    assert shipped
    assert [path for path in shipped if f"secrets_ledger/{path}" not in names] == []


def test_the_installed_package_imports_from_the_environment_not_the_checkout(
        installed: Path, tmp_path: Path) -> None:
    where = _run(installed / "python", "-c",
                 "import secrets_ledger.api.cli as cli; print(cli.__file__)", cwd=tmp_path)
    assert Path(where.strip()).is_relative_to(installed.parent)
    for generic in ("api", "domain", "service", "core", "adapters", "migrations"):
        missing = subprocess.run([installed / "python", "-c", f"import {generic}"],
                                 cwd=tmp_path, capture_output=True, timeout=60, check=False)
        assert missing.returncode != 0, generic


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_installed_server_serves(installed: Path, backend: str, tmp_path: Path) -> None:
    with running_server(backend, tmp_path, cli=installed / "secrets-ledger") as server, \
            server.admin() as admin:
        tenant = create_tenant(admin)
        token = issue_token(admin, tenant, "writer")["token"]
        with server.client(token) as writer:
            path = f"/v1/tenants/{tenant}/secrets/smoke/key"
            assert writer.put(path, json={"value": {"n": 1}}).status_code == 201
            read = writer.get(path)
            assert (read.status_code, read.json()["value"]) == (200, {"n": 1})
        verified = admin.get(f"/v1/tenants/{tenant}/verify")
        assert verified.status_code == 200
        assert verified.json()["ok"] is True
