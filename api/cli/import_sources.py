"""The import's remote sources, read through their own clients: AWS Secrets Manager by
boto3, a Vault KV v2 mount by hvac. Each gives every secret's current value, or (with
``--all-versions``) every version it can still read, oldest first, each with its
labels as the version's metadata.

Version order. AWS numbers no version: its versions come in creation order, except that
the one labelled ``AWSCURRENT`` comes last, so that the ledger's current value is AWS's
(a newer ``AWSPENDING`` one, of a rotation under way, comes before it). Vault numbers
its versions: they come in that order, and a secret whose current version is deleted or
destroyed is skipped (as without ``--all-versions``), as is each older version that is.
"""

from __future__ import annotations

import os
import sys
from typing import Any
from urllib.parse import urlsplit

from secrets_ledger.api.cli.commands import CommandFailed
from secrets_ledger.core.imports import Version

CURRENT = "AWSCURRENT"


def server_label(url: str) -> str:
    """A server's URL as the audit trail and messages name it: never its user or password
    (``https://user:secret@host`` must not end up in a log line or the history)."""
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a port number: the request will fail on its own
        port = ""
    return f"{parts.scheme}://{parts.hostname}{port}" if parts.hostname else "a server"


def aws_secrets(endpoint: str | None, region: str | None, prefix: str,
                all_versions: bool) -> dict[str, Any]:
    """Every secret's current value (its ``SecretString``) by name, or its ``Version``
    list; a secret scheduled for deletion is not listed, one with no current value is
    skipped (and counted)."""
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise CommandFailed("--from aws-sm needs boto3: pip install 'secrets-ledger[aws]'"
                            ) from None
    values: dict[str, Any] = {}
    skipped = 0
    try:
        client = boto3.client("secretsmanager", endpoint_url=endpoint, region_name=region)

        def text(name: str, **which: str) -> str | None:
            try:
                found = client.get_secret_value(**which)
            except ClientError as error:
                if error.response["Error"]["Code"] != "ResourceNotFoundException":
                    raise
                return None  # no such version (any more)
            if "SecretString" not in found:
                raise CommandFailed(f"{name!r} is a binary secret: the ledger holds JSON"
                                    " values (store it base64-encoded)")
            return str(found["SecretString"])

        filters = [{"Key": "name", "Values": [prefix]}] if prefix else []
        for page in client.get_paginator("list_secrets").paginate(Filters=filters):
            for entry in page["SecretList"]:
                name, arn = entry["Name"], entry["ARN"]
                if not name.startswith(prefix):
                    continue  # the name filter also matches words inside a name
                found = (_aws_history(client, name, arn, text) if all_versions
                         else text(name, SecretId=arn))
                if found is None or found == []:
                    skipped += 1  # no current version: nothing to move
                else:
                    values[name] = found
    except (BotoCoreError, ClientError) as error:
        said = str(error) if endpoint is None else str(error).replace(endpoint,
                                                                     server_label(endpoint))
        raise CommandFailed(f"AWS Secrets Manager: {said}") from None
    if skipped:
        print(f"skipped {skipped} secrets with no current value", file=sys.stderr)
    return values


def _aws_history(client: Any, name: str, arn: str, text: Any) -> list[Version]:
    versions: list[dict[str, Any]] = []
    more: dict[str, str] = {}
    while True:  # botocore has no paginator for this operation
        page = client.list_secret_version_ids(SecretId=arn, IncludeDeprecated=True, **more)
        versions += page["Versions"]
        if not page.get("NextToken"):
            break
        more = {"NextToken": page["NextToken"]}
    if not any(CURRENT in version.get("VersionStages", ()) for version in versions):
        return []
    versions.sort(key=lambda v: (CURRENT in v.get("VersionStages", ()), v["CreatedDate"]))
    history: list[Version] = []
    for version in versions:
        value = text(name, SecretId=arn, VersionId=version["VersionId"])
        if value is not None:
            history.append((value, {"aws_version_id": version["VersionId"], "aws_stages":
                                    ",".join(sorted(version.get("VersionStages", ())))}))
    return history


def vault_secrets(addr: str | None, namespace: str | None, mount: str, under: str,
                  all_versions: bool) -> dict[str, Any]:
    """Every secret under a path of a KV v2 mount, its current data by path (walked
    folder by folder), or its ``Version`` list; a secret whose current version is
    deleted or destroyed is skipped (and counted)."""
    try:
        import hvac
        from hvac.exceptions import InvalidPath, VaultError
    except ImportError:
        raise CommandFailed("--from vault needs hvac: pip install 'secrets-ledger[vault]'"
                            ) from None
    if not addr or not os.environ.get("VAULT_TOKEN"):
        raise CommandFailed("--from vault needs --addr (or VAULT_ADDR) and VAULT_TOKEN")
    kv = hvac.Client(url=addr, token=os.environ["VAULT_TOKEN"], namespace=namespace,
                     timeout=30).secrets.kv.v2
    secrets: dict[str, Any] = {}
    skipped = 0
    folders = [f"{under}/" if under else ""]
    try:
        while folders:
            folder = folders.pop()
            try:
                listed = kv.list_secrets(path=folder, mount_point=mount)["data"]["keys"]
            except InvalidPath:  # an empty or missing folder (Vault answers 404)
                continue
            for name in listed:
                if name.endswith("/"):
                    folders.append(folder + name)
                    continue
                found = (_vault_history(kv, folder + name, mount) if all_versions else
                         kv.read_secret_version(path=folder + name, mount_point=mount,
                                                raise_on_deleted_version=False)["data"]
                         .get("data"))
                if found is None or found == []:
                    skipped += 1  # its current version was deleted or destroyed
                else:
                    secrets[folder + name] = found
    except (VaultError, OSError) as error:
        raise CommandFailed(f"Vault at {server_label(addr)}: {type(error).__name__}") from None
    if skipped:
        print(f"skipped {skipped} secrets whose current version is deleted", file=sys.stderr)
    return secrets


def _vault_history(kv: Any, path: str, mount: str) -> list[Version]:
    metadata = kv.read_secret_metadata(path=path, mount_point=mount)["data"]
    versions = metadata["versions"]

    def readable(number: str) -> bool:
        return not (versions[number].get("destroyed") or versions[number].get("deletion_time"))

    if not readable(str(metadata["current_version"])):
        return []
    history: list[Version] = []
    for number in sorted((n for n in versions if readable(n)), key=int):
        data = kv.read_secret_version(path=path, version=int(number), mount_point=mount,
                                      raise_on_deleted_version=False)["data"].get("data")
        if data is not None:
            history.append((data, {"vault_version": number}))
    return history
