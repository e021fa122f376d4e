"""``secrets-ledger import`` from the protocols the ledger itself serves: a tenant's
secrets written through its AWS Secrets Manager façade (boto3) and its Vault KV v2 façade
(hvac) are imported by the CLI, beside the running server, into another tenant; the
values read back over the native API are the ones written, and a dry run then says the
two agree (exit 0)."""

from __future__ import annotations

import subprocess
from typing import Any

import httpx
import hvac

from secrets_ledger.core.signing_keys import aws_key_pair
from tests.e2e.helpers import CLI, Server, secret_path, unique
from tests.e2e.test_aws_facade import sm


def cli(server: Server, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), *args], env=server.env() | env, capture_output=True,
                          text=True, timeout=120, check=False)


def value_of(admin: httpx.Client, tenant: str, key: str) -> Any:
    response = admin.get(secret_path(tenant, key))
    assert response.status_code == 200, response.text
    return response.json()["value"]


def test_secrets_written_through_the_aws_facade_import_and_then_agree(
        server: Server, admin: httpx.Client, writer_token: dict[str, Any]) -> None:
    client = sm(server, writer_token["token"])
    written = {"prod/db/password": "p@ss w0rd", "prod/api": '{"key": "v"}'}
    for name, value in written.items():
        client.create_secret(Name=name, SecretString=value)
    key_id, secret = aws_key_pair(writer_token["token"])
    aws = {"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret}
    into = unique()
    source = ["--from", "aws-sm", "--endpoint-url", server.aws_url, "--region", "us-east-1",
              "--prefix", "prod/"]
    done = cli(server, "import", "--tenant", into, "--create-tenant", *source, **aws)
    assert done.returncode == 0, done.stderr
    assert {key: value_of(admin, into, key) for key in written} == written
    agreed = cli(server, "import", "--tenant", into, "--dry-run", *source, **aws)
    assert agreed.returncode == 0, agreed.stdout + agreed.stderr


def test_secrets_written_through_the_vault_facade_import_and_then_agree(
        server: Server, admin: httpx.Client, writer_token: dict[str, Any]) -> None:
    token = writer_token["token"]
    kv = kv_v2_mount(server, token, "kvv2")
    kv.create_or_update_secret("app/db", {"user": "svc", "password": "p w"}, mount_point="kvv2")
    kv.create_or_update_secret("app/deep/api", {"key": "k", "limits": {"rps": 5}},
                               mount_point="kvv2")
    kv.create_or_update_secret("other/x", {"a": "elsewhere"}, mount_point="kvv2")
    into = unique()
    source = ["--from", "vault", "--addr", server.vault_url, "--mount", "kvv2", "--path", "app"]
    done = cli(server, "import", "--tenant", into, "--create-tenant", *source,
               VAULT_TOKEN=token)
    assert done.returncode == 0, done.stderr
    assert "imported 4 changed keys of 4" in done.stdout
    assert {key: value_of(admin, into, key) for key in (
        "app/db/user", "app/db/password", "app/deep/api/key", "app/deep/api/limits/rps")} == {
        "app/db/user": "svc", "app/db/password": "p w", "app/deep/api/key": "k",
        "app/deep/api/limits/rps": 5}
    agreed = cli(server, "import", "--tenant", into, "--dry-run", *source, VAULT_TOKEN=token)
    assert agreed.returncode == 0, agreed.stdout + agreed.stderr
    kv.create_or_update_secret("app/db", {"user": "svc", "password": "rotated"},
                               mount_point="kvv2")
    differs = cli(server, "import", "--tenant", into, "--dry-run", *source, VAULT_TOKEN=token)
    assert differs.returncode == 1 and "rotated" not in differs.stdout


def test_every_version_through_the_vault_facade_imports_in_order_and_then_agrees(
        server: Server, admin: httpx.Client, writer_token: dict[str, Any]) -> None:
    token = writer_token["token"]
    kv = kv_v2_mount(server, token, "kvh")
    for n in (1, 2, 3):
        kv.create_or_update_secret("app/db", {"password": f"v{n}"}, mount_point="kvh")
    kv.delete_secret_versions("app/db", versions=[1], mount_point="kvh")  # unreadable
    kv.create_or_update_secret("app/gone", {"x": "y"}, mount_point="kvh")
    kv.delete_latest_version_of_secret("app/gone", mount_point="kvh")  # current deleted
    into = unique()
    source = ["--from", "vault", "--addr", server.vault_url, "--mount", "kvh", "--path", "app",
              "--all-versions"]
    done = cli(server, "import", "--tenant", into, "--create-tenant", *source,
               VAULT_TOKEN=token)
    assert done.returncode == 0, done.stderr
    assert "imported 2 versions of 1 keys" in done.stdout, done.stdout
    versions = [admin.get(secret_path(into, "app/db"), params={"version": n}).json()
                for n in (1, 2)]
    assert [(v["value"], v["metadata"]) for v in versions] == [
        ({"password": "v2"}, {"vault_version": "2"}),
        ({"password": "v3"}, {"vault_version": "3"})]
    agreed = cli(server, "import", "--tenant", into, "--dry-run", *source, VAULT_TOKEN=token)
    assert agreed.returncode == 0, agreed.stdout + agreed.stderr


def kv_v2_mount(server: Server, token: str, path: str) -> Any:
    """hvac's KV v2 client over a mount enabled at ``path`` of the Vault façade."""
    vault = hvac.Client(url=server.vault_url, token=token)
    vault.sys.enable_secrets_engine("kv", path=path, options={"version": "2"})
    return vault.secrets.kv.v2
