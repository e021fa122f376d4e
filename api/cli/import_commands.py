"""``secrets-ledger import``: a source's keys written to a tenant in one event, or compared
with it first (``--dry-run``: a table of what would change, never a value; exit 0 when
the source and the tenant agree, 1 when they differ).

Sources are read by their own libraries: JSON by ``json`` (nested objects flattened to
paths, ``domain.import_paths``), dotenv files by python-dotenv's parser (quotes,
``export``, escapes, comments, multi-line values; a line it cannot parse is refused, not
skipped), AWS Secrets Manager by boto3 (each secret's current ``SecretString``, by name),
a Vault KV v2 mount by hvac (each secret's current data under its path, then flattened
as JSON is); with ``--all-versions``, every version of each secret those two can still
read, with its labels (``api.cli.import_sources``).
Every bad input is one line and exit 2, before storage is opened.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
from pathlib import Path
from typing import Any

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
from secrets_ledger.api.cli.import_sources import aws_secrets, server_label, vault_secrets
from secrets_ledger.api.rest.paths import rest_key
from secrets_ledger.core.imports import (
    HistoryDiff,
    ImportDiff,
    check_histories,
    check_import,
)
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
    importer.add_argument("--nested", choices=("paths", "as-value"),
                          help="JSON: nested objects become a/b paths (default), or stay"
                               " one key's JSON value")
    importer.add_argument("--all-versions", action="store_true",
                          help="aws-sm, vault: every version of each secret, oldest first,"
                               " with its labels as metadata (a Vault secret's data stays"
                               " one value)")
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
    histories = args.all_versions
    if histories and (args.source not in READS_NO_FILE or args.nested == "paths"):
        raise CommandFailed("--all-versions is for --from aws-sm and --from vault, whose"
                            " secrets' data each stay one value (not --nested paths)")
    # Each secret's versions (--all-versions), or each key's value.
    found, label = _remote(args, all_versions=True) if histories else _source(args)
    # Refuse a bad file before touching storage; imported keys must be readable over the
    # REST API, whose paths reserve some last segments.
    try:
        if histories:
            check_histories(args.tenant, found)
        else:
            check_import(args.tenant, found)
        for key in found:
            rest_key(key)
    except InvalidRequest as error:
        raise CommandFailed(error.detail) from None
    # The audit trail names the source: who imported, from what.
    importer = Principal.operator(f"cli:import:{args.source}:{label}")
    with runtime_of_ledger() as runtime, progress_bar("import", len(found), "keys") as advance:
        imports = runtime.ledger.imports
        options: dict[str, Any] = {"create_tenant": args.create_tenant, "progress": advance}
        if args.dry_run:
            compare = imports.history_diff if histories else imports.diff
            diff = asyncio.run(compare(importer, args.tenant, found, **options))
        else:
            write = imports.histories if histories else imports.json_object
            written = asyncio.run(write(importer, args.tenant, found, cli_request(), **options))
    if args.dry_run:
        _print_diff(diff, args.tenant, diff.pending if isinstance(diff, HistoryDiff) else None)
        return 0 if diff.agrees else EXIT_DIFFERENT
    if histories:
        print(f"imported {len(written)} versions of {len({w.key for w in written})} keys"
              f" ({len(found)} in the source) into {args.tenant}")
    else:
        print(f"imported {len(written)} changed keys of {len(found)} into {args.tenant}")
    return 0


def _remote(args: argparse.Namespace, *, all_versions: bool) -> tuple[dict[str, Any], str]:
    """A remote source's secrets (values, or version lists), and its audit label."""
    if args.source == "aws-sm":
        return aws_secrets(args.endpoint_url, args.region, args.prefix, all_versions), (
            server_label(args.endpoint_url) if args.endpoint_url else args.region or "aws")
    addr = args.addr or os.environ.get("VAULT_ADDR")
    return vault_secrets(addr, args.namespace or os.environ.get("VAULT_NAMESPACE"),
                         args.mount, args.path.strip("/"), all_versions), (
        f"{server_label(addr or '')}/{args.mount}")


def _source(args: argparse.Namespace) -> tuple[dict[str, Any], str]:
    """The source's keys, and the label the audit trail names it by."""
    flatten = args.nested != "as-value"
    if args.source in READS_NO_FILE:
        found, label = _remote(args, all_versions=False)
        if args.source == "vault":
            return _nested(found, flatten, "the Vault secrets"), label
        return found, label
    path = Path(args.file)
    if args.source == "dotenv":
        return _dotenv_file(path), path.name
    return _json_file(path, flatten=flatten), path.name


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


def _print_diff(diff: ImportDiff, tenant: str, pending: dict[str, int] | None = None
                ) -> None:
    """The keys that differ, then a count of those that agree; never a value. With
    ``pending`` (``--all-versions``), how many versions each key would get."""
    columns = ["key", "would be", "tenant's version"] + (["versions to write"] if pending
                                                         is not None else [])
    table = Table(*columns, title=f"import into {tenant}")
    rows = ([(key, "added", "-") for key in diff.added]
            + [(key, "changed", str(version)) for key, version in diff.changed]
            + [(key, "not in the source (kept)", str(version))
               for key, version in diff.missing])
    for key, what, version in sorted(rows):
        extra = [] if pending is None else [str(pending.get(key, 0))]
        table.add_row(Text(key), what, version, *extra)  # Text: a key is never markup
    console = Console(soft_wrap=True)
    if rows:
        console.print(table)
    console.print(f"added {len(diff.added)}, changed {len(diff.changed)}, unchanged"
                  f" {len(diff.unchanged)}, not in the source {len(diff.missing)}:"
                  f" {'the tenant agrees with the source' if diff.agrees else 'they differ'}",
                  highlight=False)
