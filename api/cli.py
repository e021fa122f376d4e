"""The ``secrets-ledger`` command: serve, migrate, project, replay, verify, tenant, token,
keys and import.

Expected failures (bad arguments, unreachable storage, a refused command) print one
line on stderr and exit 2; ``verify`` exits 1 when a chain is broken. Never a traceback
for an expected failure, never a secret value; a new token is the only secret printed,
on stdout, once.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import psycopg
import pydantic
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from secrets_ledger.domain.errors import LedgerError
from secrets_ledger.domain.tenant import RequestContext
from secrets_ledger.projections.checksum import views_checksum
from secrets_ledger.projections.replay import replay
from secrets_ledger.projections.views import views_named
from secrets_ledger.service.database import migrate
from secrets_ledger.service.ledger import check_import
from secrets_ledger.service.master_rotation import RotationRefused, rotate_master_key
from secrets_ledger.service.parallel_replay import AUTO_MIN_EVENTS, MAX_WORKERS, loader_for
from secrets_ledger.service.runtime import LedgerRuntime
from secrets_ledger.service.settings import Settings
from secrets_ledger.service.storage import open_storage
from secrets_ledger.service.tokens import TENANT_ROLES, TokenStore
from secrets_ledger.service.verify import verify_all

EXIT_BROKEN = 1
EXIT_USAGE = 2


class CommandFailed(Exception):
    """An expected failure: one line on stderr, exit code 2."""


def _cli_context() -> RequestContext:
    return RequestContext(actor="cli", request_id=f"cli-{uuid.uuid4()}")


@contextmanager
def _progress(label: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar with its rate, on stderr so that stdout stays machine-readable."""
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]:>10.0f} events/s"), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), redirect_stdout=False) as bar:
        task = bar.add_task(label, total=max(total, 1), rate=0.0)

        def advance(count: int) -> None:
            bar.advance(task, count)
            elapsed = bar.tasks[0].elapsed or 0.0
            done = bar.tasks[0].completed
            bar.update(task, rate=done / elapsed if elapsed else 0.0)

        yield advance


def _workers(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"a whole number from 1 to {MAX_WORKERS}")
    return int(text)


def _runtime(follow: bool = False) -> LedgerRuntime:
    return LedgerRuntime(Settings(), follow=follow)


# ---- sub-commands -----------------------------------------------------------------------

def cmd_serve(args: argparse.Namespace) -> int:
    from secrets_ledger.api.server import serve

    return serve(Settings(), args.host, args.port, follow=not args.no_projector)


def cmd_migrate(args: argparse.Namespace) -> int:
    storage = open_storage(Settings(), run_migrations=False)
    try:
        applied = migrate(storage.db)
    finally:
        storage.close()
    print(f"applied: {', '.join(applied) if applied else 'nothing (up to date)'}")
    return 0


def cmd_project(args: argparse.Namespace) -> int:
    with _runtime() as runtime:
        if args.once:
            print(f"applied: {runtime.projector.catch_up()} events")
            return 0
        stop = threading.Event()
        try:
            runtime.projector.run(stop, runtime.storage.settings.projection_poll_interval)
        except KeyboardInterrupt:
            stop.set()
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    views = views_named(args.view)
    with _runtime() as runtime:
        storage = runtime.storage
        total = storage.source.max_position()
        loader = loader_for(storage.settings, total, args.workers)
        with _progress(f"replay {args.view}", total) as advance:
            checksum = replay(storage.db, storage.source, views, progress=advance,
                              loader=loader)
    print(f"checksum: {checksum}")
    return 0


def cmd_checksum(args: argparse.Namespace) -> int:
    views = views_named(args.view)
    with _runtime() as runtime:
        runtime.projector.catch_up()
        print(f"checksum: {views_checksum(runtime.storage.db, views)}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    with _runtime() as runtime:
        if args.tenant is not None:
            checks = [runtime.ledger.verify(args.tenant)]
            checks[0].name = args.tenant
        else:
            total = runtime.storage.source.max_position()
            with _progress("verify", total) as advance:
                checks = list(verify_all(runtime.storage.events, progress=advance).checks.values())
    broken = 0
    for check in checks:
        label = check.name or check.tenant_id
        if check.ok:
            print(f"ok      {label}: {check.events} events, head {check.head}")
        else:
            broken += 1
            print(f"BROKEN  {label}: first bad position {check.first_bad_position}"
                  f" of {check.events} ({check.reason})")
    print(f"{len(checks) - broken} intact, {broken} broken")
    return EXIT_BROKEN if broken else 0


def cmd_tenant_create(args: argparse.Namespace) -> int:
    with _runtime() as runtime:
        created_at = runtime.ledger.open_tenant(args.tenant, _cli_context())
    print(f"{args.tenant} {created_at}")
    return 0


def cmd_tenant_list(args: argparse.Namespace) -> int:
    with _runtime() as runtime:
        for name, created_at, shredded_at in runtime.ledger.list_tenants():
            print(f"{name}\t{created_at}\t{'shredded ' + shredded_at if shredded_at else 'live'}")
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    if args.role == "admin" and args.tenant:
        raise CommandFailed("admin tokens are global: drop --tenant")
    if args.role != "admin" and not args.tenant:
        raise CommandFailed(f"{args.role} tokens need --tenant")
    with _runtime() as runtime:
        store = TokenStore(runtime.storage.db, runtime.ledger)
        issued = store.issue(args.role, args.tenant, args.ttl_seconds, args.description,
                             _cli_context())
    print(issued.token)
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    with _runtime() as runtime:
        TokenStore(runtime.storage.db, runtime.ledger).revoke(args.tenant, args.token_id,
                                                              _cli_context())
    print(f"revoked {args.token_id}")
    return 0


def cmd_keys_rotate_master(args: argparse.Namespace) -> int:
    with _runtime() as runtime:
        count = rotate_master_key(runtime.storage)
    print(f"re-wrapped {count} tenant keys under the new master key; no event was touched")
    return 0


def cmd_keys_rotate_tenant(args: argparse.Namespace) -> int:
    with _runtime() as runtime:
        version = runtime.ledger.rotate_tenant_key(args.tenant, _cli_context())
    print(f"key_version: {version}")
    return 0


def _read_import_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except OSError as error:
        raise CommandFailed(f"cannot read {path}: {error.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise CommandFailed(f"{path} is not a JSON document") from None
    if not isinstance(data, dict):
        raise CommandFailed(f"{path} must hold a JSON object of key -> value")
    return data


def cmd_import(args: argparse.Namespace) -> int:
    values = _read_import_file(Path(args.file))
    check_import(args.tenant, values)  # refuse a bad file before touching storage
    with _runtime() as runtime, _progress("import", len(values)) as advance:
        written = runtime.ledger.import_secrets(args.tenant, values, _cli_context(),
                                                progress=advance)
    print(f"imported {len(written)} changed keys of {len(values)} into {args.tenant}")
    return 0


# ---- parsing ------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="secrets-ledger", description="An event-sourced secrets ledger.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    serve = sub.add_parser("serve", help="run the HTTP API (and the projector)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8200)
    serve.add_argument("--no-projector", action="store_true",
                       help="no projector thread: run `secrets-ledger project` beside it"
                       " (queries still catch the views up when they must)")
    serve.set_defaults(run=cmd_serve)

    sub.add_parser("migrate", help="apply the schema migrations").set_defaults(run=cmd_migrate)

    project = sub.add_parser("project", help="follow the event store into the views")
    project.add_argument("--once", action="store_true", help="catch up, then exit")
    project.set_defaults(run=cmd_project)

    for name, run, text in (("replay", cmd_replay, "rebuild views from position 0"),
                            ("checksum", cmd_checksum, "print the live views' checksum")):
        command = sub.add_parser(name, help=text)
        command.add_argument("--view", choices=["current", "audit", "all"], default="all")
        command.set_defaults(run=run)
        if name == "replay":
            command.add_argument(
                "--workers", type=_workers, default=None,
                help="processes that load the views side by side, PostgreSQL only (default:"
                     f" one per CPU from {AUTO_MIN_EVENTS:,} events on, else 1)")

    verify = sub.add_parser("verify", help="recompute the hash chains (no key needed)")
    verify.add_argument("--tenant")
    verify.set_defaults(run=cmd_verify)

    tenant = sub.add_parser("tenant", help="tenants").add_subparsers(
        dest="action", required=True, parser_class=_Parser)
    create = tenant.add_parser("create", help="open a tenant")
    create.add_argument("tenant")
    create.set_defaults(run=cmd_tenant_create)
    tenant.add_parser("list", help="list tenants").set_defaults(run=cmd_tenant_list)

    token = sub.add_parser("token", help="API tokens").add_subparsers(
        dest="action", required=True, parser_class=_Parser)
    token_create = token.add_parser("create", help="print a new token on stdout")
    token_create.add_argument("--role", choices=["admin", *TENANT_ROLES], required=True)
    token_create.add_argument("--tenant")
    token_create.add_argument("--ttl-seconds", type=int)
    token_create.add_argument("--description", default="")
    token_create.set_defaults(run=cmd_token_create)
    token_revoke = token.add_parser("revoke", help="revoke a tenant token")
    token_revoke.add_argument("--tenant", required=True)
    token_revoke.add_argument("token_id")
    token_revoke.set_defaults(run=cmd_token_revoke)

    keys = sub.add_parser("keys", help="key management").add_subparsers(
        dest="action", required=True, parser_class=_Parser)
    keys.add_parser("rotate-master", help="re-wrap every data key under a new master key"
                    ).set_defaults(run=cmd_keys_rotate_master)
    rotate_tenant = keys.add_parser("rotate-tenant", help="new writes use a new tenant key")
    rotate_tenant.add_argument("--tenant", required=True)
    rotate_tenant.set_defaults(run=cmd_keys_rotate_tenant)

    importer = sub.add_parser("import", help="write a JSON object of key -> value atomically")
    importer.add_argument("--tenant", required=True)
    importer.add_argument("file")
    importer.set_defaults(run=cmd_import)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except (CommandFailed, RotationRefused, LedgerError) as error:
        return _fail(str(error))
    except pydantic.ValidationError as error:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in error.errors())
        return _fail(f"invalid configuration: {fields}")
    except (psycopg.OperationalError, sqlite3.Error, OSError) as error:
        return _fail(f"storage unreachable: {type(error).__name__}")
    except ValueError as error:
        return _fail(f"invalid configuration: {error}")
    return code


def _fail(message: str) -> int:
    print(f"secrets-ledger: {message}", file=sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
