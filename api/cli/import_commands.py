"""``secrets-ledger import``: a source's keys written to a tenant in one event, or compared
with it first (``--dry-run``: a table of what would change, never a value; exit 0 when
the source and the tenant agree, 1 when they differ).

Sources are read by their own libraries: JSON by ``json`` (nested objects flattened to
paths, ``domain.import_paths``), dotenv files by python-dotenv's parser (quotes,
``export``, escapes, comments, multi-line values; a line it cannot parse is refused, not
skipped), AWS Secrets Manager by boto3 (each secret's current ``SecretString``, by name),
a Vault KV v2 mount by hvac (each secret's current data under its path, then flattened
as JSON is).
Every bad input is one line and exit 2, before storage is opened.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from dotenv.parser import parse_stream
from rich.console import Console
from rich.table import Table
from rich.text import Text

from secrets_ledger.api.cli.commands import (
    CommandFailed,
    cli_request,
    progress_bar,
    runtime_of_ledger,
)
from secrets_ledger.api.rest.paths import rest_key
from secrets_ledger.core.imports import ImportDiff, check_import
from secrets_ledger.core.principals import Principal
from secrets_ledger.domain.errors import InvalidRequest
from secrets_ledger.domain.import_paths import flattened

EXIT_DIFFERENT = 1
SOURCES = ("json", "dotenv", "aws-sm", "vault")
READS_NO_FILE = ("aws-sm", "vault")


def add_import_verb(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    importer = sub.add_parser("import", help="write a source's keys to a tenant atomically")
    importer.add_argument("--tenant", required=True)
    importer.add_argument("--from", dest="source", choices=SOURCES, default="json",
                          help="the file's format (default json)")
    importer.add_argument("--nested", choices=("paths", "as-value"), default="paths",
                          help="JSON: nested objects become a/b paths (default), or stay"
                               " one key's JSON value")
    importer.add_argument("--dry-run", action="store_true",
                          help="print what would change (never a value) and write nothing;"
                               " exit 0 if the tenant already agrees, 1 if not")
    importer.add_argument("--create-tenant", action="store_true",
                          help="open the tenant first if it does not exist")
    aws = importer.add_argument_group("--from aws-sm (boto3; credentials as boto3 finds them)")
    aws.add_argument("--endpoint-url", help="the Secrets Manager endpoint (default: AWS's)")
    aws.add_argument("--region", help="the region (default: as boto3 finds it)")
    aws.add_argument("--prefix", default="", help="only the secrets whose name starts so")
    vault = importer.add_argument_group("--from vault (hvac; the token in VAULT_TOKEN)")
    vault.add_argument("--addr", help="the Vault address (default: VAULT_ADDR)")
    vault.add_argument("--mount", default="secret", help="the KV v2 mount (default secret)")
    vault.add_argument("--path", default="", help="only the secrets under this path")
    vault.add_argument("--namespace", help="the Vault namespace (default: VAULT_NAMESPACE)")
    importer.add_argument("file", nargs="?", help="the JSON or dotenv file")
    importer.set_defaults(run=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    if (args.file is None) != (args.source in READS_NO_FILE):
        raise CommandFailed(f"--from {args.source} reads a FILE" if args.file is None
                            else f"--from {args.source} reads no file")
    values, label = _source(args)
    # Refuse a bad file before touching storage; imported keys must be readable over the
    # REST API, whose paths reserve some last segments.
    try:
        check_import(args.tenant, values)
        for key in values:
            rest_key(key)
    except InvalidRequest as error:
        raise CommandFailed(error.detail) from None
    # The audit trail names the source: who imported, from what.
    importer = Principal.operator(f"cli:import:{args.source}:{label}")
    with runtime_of_ledger() as runtime, progress_bar("import", len(values), "keys") as advance:
        imports = runtime.ledger.imports
        if args.dry_run:
            diff = asyncio.run(imports.diff(importer, args.tenant, values,
                                            create_tenant=args.create_tenant,
                                            progress=advance))
        else:
            written = asyncio.run(imports.json_object(
                importer, args.tenant, values, cli_request(), create_tenant=args.create_tenant,
                progress=advance))
    if args.dry_run:
        _print_diff(diff, args.tenant)
        return 0 if diff.agrees else EXIT_DIFFERENT
    print(f"imported {len(written)} changed keys of {len(values)} into {args.tenant}")
    return 0


def _source(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """The source's keys, and the label the audit trail names it by."""
    if args.source == "aws-sm":
        return _aws_secrets(args.endpoint_url, args.region, args.prefix), (
            server_label(args.endpoint_url) if args.endpoint_url else args.region or "aws")
    if args.source == "vault":
        addr = args.addr or os.environ.get("VAULT_ADDR")
        document = _vault_secrets(addr, args.namespace or os.environ.get("VAULT_NAMESPACE"),
                                  args.mount, args.path.strip("/"))
        return _nested(document, args.nested == "paths", "the Vault secrets"), (
            f"{server_label(addr or '')}/{args.mount}")
    path = Path(args.file)
    if args.source == "dotenv":
        return _dotenv_file(path), path.name
    return _json_file(path, flatten=args.nested == "paths"), path.name


def server_label(url: str) -> str:
    """A server's URL as the audit trail and messages name it: never its user or password
    (``https://user:secret@host`` must not end up in a log line or the history)."""
    parts = urlsplit(url)
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:  # not a port number: the request will fail on its own
        port = ""
    return f"{parts.scheme}://{parts.hostname}{port}" if parts.hostname else "a server"


def _aws_secrets(endpoint: str | None, region: str | None, prefix: str) -> dict[str, Any]:
    """Every secret's current value (its ``SecretString``), by name; a secret scheduled
    for deletion is not listed, one with no current value is skipped (and counted)."""
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
        filters = [{"Key": "name", "Values": [prefix]}] if prefix else []
        for page in client.get_paginator("list_secrets").paginate(Filters=filters):
            for entry in page["SecretList"]:
                if not entry["Name"].startswith(prefix):
                    continue  # the name filter also matches words inside a name
                try:
                    found = client.get_secret_value(SecretId=entry["ARN"])
                except ClientError as error:
                    if error.response["Error"]["Code"] != "ResourceNotFoundException":
                        raise
                    skipped += 1  # no current version: nothing to move
                    continue
                if "SecretString" not in found:
                    raise CommandFailed(f"{entry['Name']!r} is a binary secret: the ledger"
                                        " holds JSON values (store it base64-encoded)")
                values[entry["Name"]] = found["SecretString"]
    except (BotoCoreError, ClientError) as error:
        said = str(error) if endpoint is None else str(error).replace(endpoint,
                                                                     server_label(endpoint))
        raise CommandFailed(f"AWS Secrets Manager: {said}") from None
    if skipped:
        print(f"skipped {skipped} secrets with no current value", file=sys.stderr)
    return values


def _vault_secrets(addr: str | None, namespace: str | None, mount: str, under: str
                   ) -> dict[str, Any]:
    """Every secret under a path of a KV v2 mount, its current data by path (walked
    folder by folder); a secret whose current version is deleted or destroyed is skipped
    (and counted)."""
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
                data = kv.read_secret_version(path=folder + name, mount_point=mount,
                                              raise_on_deleted_version=False)["data"]
                if data.get("data") is None:
                    skipped += 1  # its current version was deleted or destroyed
                else:
                    secrets[folder + name] = data["data"]
    except (VaultError, OSError) as error:
        raise CommandFailed(f"Vault at {server_label(addr)}: {type(error).__name__}") from None
    if skipped:
        print(f"skipped {skipped} secrets whose current version is deleted", file=sys.stderr)
    return secrets


def _nested(document: dict[str, Any], flatten: bool, what: str) -> dict[str, Any]:
    try:
        return flattened(document) if flatten else document
    except InvalidRequest as error:
        raise CommandFailed(f"{what}: {error.detail}") from None


def _json_file(path: Path, *, flatten: bool) -> dict[str, Any]:
    try:
        data = json.loads(_text(path))
    except json.JSONDecodeError:
        raise CommandFailed(f"{path} is not a JSON document") from None
    except RecursionError:
        raise CommandFailed(f"{path} nests deeper than a value may (64 levels)") from None
    if not isinstance(data, dict):
        raise CommandFailed(f"{path} must hold a JSON object of key -> value")
    return _nested(data, flatten, str(path))


def _dotenv_file(path: Path) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for binding in parse_stream(io.StringIO(_text(path))):
        line = binding.original.line
        if binding.error:
            raise CommandFailed(f"{path}:{line}: not a dotenv line (KEY=value)")
        if binding.key is None:  # a comment or a blank line
            continue
        if binding.value is None:
            raise CommandFailed(f"{path}:{line}: {binding.key!r} has no value (KEY=value)")
        if binding.key in values:
            raise CommandFailed(f"{path}:{line}: {binding.key!r} is set twice")
        values[binding.key] = binding.value
    return values


def _text(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except OSError as error:
        raise CommandFailed(f"cannot read {path}: {error.strerror}") from None
    except UnicodeDecodeError:
        raise CommandFailed(f"{path} is not UTF-8 text") from None


def _print_diff(diff: ImportDiff, tenant: str) -> None:
    """The keys that differ, then a count of those that agree; never a value."""
    table = Table("key", "would be", "tenant's version", title=f"import into {tenant}")
    rows = ([(key, "added", "-") for key in diff.added]
            + [(key, "changed", str(version)) for key, version in diff.changed]
            + [(key, "not in the source (kept)", str(version))
               for key, version in diff.missing])
    for key, what, version in sorted(rows):
        table.add_row(Text(key), what, version)  # Text: a key is never read as markup
    console = Console(soft_wrap=True)
    if rows:
        console.print(table)
    console.print(f"added {len(diff.added)}, changed {len(diff.changed)}, unchanged"
                  f" {len(diff.unchanged)}, not in the source {len(diff.missing)}:"
                  f" {'the tenant agrees with the source' if diff.agrees else 'they differ'}",
                  highlight=False)
