"""Taking data out. ``secrets-ledger backup DIR``: a consistent copy of a running SQLite
store (``adapters.sqlite.backup``; on PostgreSQL, ``pg_dump``). ``secrets-ledger export``:
a tenant's current (or as-of) key/value set as JSON or as a dotenv file, on stdout or
into a new file created 0600. Every value is read through the
core as one audited read; the export prints values because that is what it is asked for,
and nothing else does.

JSON is one object of key -> value (keys are paths: import it back with
``--nested as-value``, or nested objects would become paths of their own). A dotenv line
is ``KEY='value'``, quoted as python-dotenv's own ``set_key`` quotes (its single-quote
parser decodes only ``\\\\`` and ``\\'``); a value that is not a string is written as its
JSON text. A reader that expands ``${VAR}`` (python-dotenv's default) would change a value
holding one: read it back without (``import --from dotenv`` never expands).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from secrets_ledger.api.cli.commands import (
    OPERATOR,
    CommandFailed,
    cli_request,
    progress_bar,
    runtime_of_ledger,
)
from secrets_ledger.domain.errors import InvalidRequest


def add_export_verb(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    exporter = sub.add_parser("export", help="a tenant's key/value set as JSON or dotenv")
    exporter.add_argument("--tenant", required=True)
    exporter.add_argument("--at", help="the values as they were at this RFC 3339 time")
    exporter.add_argument("--format", choices=("json", "dotenv"), default="json")
    exporter.add_argument("--output", help="a new file, created 0600 (default: stdout)")
    exporter.set_defaults(run=cmd_export)


def add_backup_verb(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    backup = sub.add_parser("backup", help="copy a running SQLite store (no key) into DIR")
    backup.add_argument("dir", help="a new directory")
    backup.set_defaults(run=cmd_backup)


def cmd_backup(args: argparse.Namespace) -> int:
    into = Path(args.dir)
    if into.exists():
        raise CommandFailed(f"{into} exists: a backup goes into a new directory")
    with runtime_of_ledger() as runtime:
        backup = next(iter(runtime.groups.values())).storage.backup  # groups: PostgreSQL
        if backup is None:
            raise CommandFailed("on PostgreSQL, back up the schema with pg_dump (README:"
                                " Backup and restore)")
        copies = backup(into)
    print(f"backed up {', '.join(path.name for path in copies)} into {into} (no key: back"
          " up the master key and the log key apart)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    output = None if args.output is None else Path(args.output)
    if output is not None and output.exists():  # refused before any read is recorded
        raise CommandFailed(f"{output} exists: an export writes a new file only")
    with runtime_of_ledger() as runtime, progress_bar("export", None, "keys") as advance:
        try:
            read, destroyed = asyncio.run(runtime.ledger.reads.export(
                OPERATOR, args.tenant, cli_request(), at=args.at, progress=advance))
        except InvalidRequest as error:
            raise CommandFailed(error.detail) from None
    if destroyed:
        print(f"left out {len(destroyed)} keys whose version was destroyed:"
              f" {', '.join(destroyed)}", file=sys.stderr)
    values = {secret.key: secret.value for secret in read}
    text = dotenv_text(values) if args.format == "dotenv" else json.dumps(
        values, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if output is None:
        print(text, end="")
        return 0
    try:
        descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as error:
        raise CommandFailed(f"cannot create {output}: {error.strerror}") from None
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    print(f"exported {len(values)} keys of {args.tenant} to {output}")
    return 0


def dotenv_text(values: dict[str, Any]) -> str:
    lines = []
    for key, value in sorted(values.items()):
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        quoted = text.replace("\\", "\\\\").replace("'", "\\'")
        lines.append(f"{key}='{quoted}'\n")
    return "".join(lines)
