"""The ``aws`` command line (awscli from PyPI), unmodified, against the AWS façade: the
flow a user moving from AWS Secrets Manager runs first, with credentials derived from a
ledger token by ``secrets-ledger token aws-credentials``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.e2e.helpers import CLI, Server

AWS = Path(sys.executable).with_name("aws")


def credentials(token: str) -> dict[str, str]:
    """What ``secrets-ledger token aws-credentials -`` prints, as environment variables."""
    done = subprocess.run([str(CLI), "token", "aws-credentials", "-"], input=token,
                          capture_output=True, text=True, check=True, timeout=60)
    pairs = [line.removeprefix("export ").split("=", 1) for line in done.stdout.splitlines()]
    return dict(pairs)


def aws(server: Server, env: dict[str, str], *args: str) -> Any:
    done = subprocess.run(
        [str(AWS), "secretsmanager", *args, "--endpoint-url", server.aws_url,
         "--region", "us-east-1", "--output", "json"],
        env={"PATH": os.environ.get("PATH", ""), "AWS_CONFIG_FILE": os.devnull,
             "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_MAX_ATTEMPTS": "1", **env},
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else None


def test_the_aws_cli_moves_a_secret_through_its_life(server: Server,
                                                     writer_token: dict[str, Any]) -> None:
    env = credentials(writer_token["token"])
    assert env["AWS_ACCESS_KEY_ID"].startswith("SLTK")
    created = aws(server, env, "create-secret", "--name", "prod/db", "--secret-string", "one",
                  "--description", "the database")
    assert created["Name"] == "prod/db"
    aws(server, env, "put-secret-value", "--secret-id", "prod/db", "--secret-string", "two")
    assert aws(server, env, "get-secret-value", "--secret-id", "prod/db")[
        "SecretString"] == "two"
    previous = aws(server, env, "get-secret-value", "--secret-id", created["ARN"],
                   "--version-stage", "AWSPREVIOUS")
    assert previous["SecretString"] == "one"
    listed = aws(server, env, "list-secrets", "--filters", "Key=name,Values=prod/")
    assert [s["Name"] for s in listed["SecretList"]] == ["prod/db"]
    assert aws(server, env, "list-secrets", "--filters", "Key=name,Values=staging/")[
        "SecretList"] == []
    deleted = aws(server, env, "delete-secret", "--secret-id", "prod/db")
    assert deleted["ARN"] == created["ARN"]
    described = aws(server, env, "describe-secret", "--secret-id", "prod/db")
    assert "DeletedDate" in described
    aws(server, env, "restore-secret", "--secret-id", "prod/db")
    assert aws(server, env, "get-secret-value", "--secret-id", "prod/db")[
        "SecretString"] == "two"
