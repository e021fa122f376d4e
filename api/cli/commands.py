"""The sub-commands of ``secrets-ledger``: each opens the runtime, calls the core as the
operator at the machine (actor ``cli``), and prints the outcome. Stdout carries only
machine-readable results (a new token, a checksum); progress goes to stderr."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from secrets_ledger.adapters.storage import holds_a_ledger
from secrets_ledger.core.principals import Principal
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.core.settings import Settings
from secrets_ledger.core.signing_keys import aws_key_pair
from secrets_ledger.projections.checksum import views_checksum
from secrets_ledger.projections.replay import DamagedEvent
from secrets_ledger.projections.views import views_named
from secrets_ledger.runtime import LedgerRuntime

EXIT_BROKEN = 1
FROM_STDIN = "-"
OPERATOR = Principal.operator("cli")


class CommandFailed(Exception):
    """An expected failure: one line on stderr, exit code 2."""


def cli_request() -> RequestInfo:
    return RequestInfo(f"cli-{uuid.uuid4()}")


@contextmanager
def progress_bar(label: str, total: int | None, unit: str = "events"
                 ) -> Iterator[Callable[[int], None]]:
    """A progress bar with its rate, on stderr so that stdout stays machine-readable. It
    appears with the first progress made: a command refused before it works prints only
    its one line. (``total`` None: not known beforehand.)"""
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(),
               TextColumn(f"{{task.fields[rate]:>10.0f}} {unit}/s"), TimeElapsedColumn())
    bar = Progress(*columns, console=Console(stderr=True), redirect_stdout=False)
    task = bar.add_task(label, total=None if total is None else max(total, 1), rate=0.0,
                        start=False)

    def advance(count: int) -> None:
        if not bar.live.is_started:
            bar.start()
            bar.start_task(task)
        bar.advance(task, count)
        elapsed = bar.tasks[0].elapsed or 0.0
        done = bar.tasks[0].completed
        bar.update(task, rate=done / elapsed if elapsed else 0.0)

    try:
        yield advance
    finally:
        if bar.live.is_started:
            bar.stop()


def runtime_of_ledger(follow: bool = False) -> LedgerRuntime:
    settings = Settings()
    if not holds_a_ledger(settings):
        raise CommandFailed(
            f"no ledger in {settings.data_dir.resolve()}: set LEDGER_DATA_DIR (or"
            " LEDGER_DATABASE_URL) to your ledger, or create one here with"
            " `secrets-ledger migrate` (or `serve`)")
    return LedgerRuntime(settings, follow=follow)


def cmd_serve(args: argparse.Namespace) -> int:
    from secrets_ledger.api.server import serve  # uvicorn is only needed here

    return serve(Settings(), args.host, args.port, follow=not args.no_projector,
                 aws_port=args.aws_port, vault_port=args.vault_port)


def cmd_migrate(args: argparse.Namespace) -> int:
    from secrets_ledger.adapters.storage import open_storage

    storage = open_storage(Settings(), run_migrations=False)
    try:
        # The progress bar shows only if the logs of older records are being built.
        with progress_bar("build transparency logs", storage.streams.max_position()) as advance:
            applied = storage.migrate(advance)
    finally:
        storage.close()
    print(f"applied: {', '.join(applied) if applied else 'nothing (up to date)'}")
    return 0


def cmd_project(args: argparse.Namespace) -> int:
    with runtime_of_ledger() as runtime:
        if args.once:
            print(f"applied: {runtime.projector.catch_up()} events")
            return 0
        stop = threading.Event()
        try:
            runtime.projector.run(stop, runtime.settings.projection_poll_interval)
        except KeyboardInterrupt:
            stop.set()
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    views = views_named(args.view)
    with runtime_of_ledger() as runtime:
        total = runtime.storage.event_source.max_position()
        with progress_bar(f"replay {args.view}", total) as advance:
            try:
                checksum, logs = runtime.replay(views, args.workers, advance)
            except DamagedEvent as damaged:
                raise CommandFailed(str(damaged)) from None
    print(f"checksum: {checksum}")
    if not logs.ok:
        raise CommandFailed(f"the transparency logs do not match the records: first bad"
                            f" position {logs.first_bad_position} ({logs.reason})")
    print(f"logs: {len(logs.heads)} logs, {logs.leaves} leaves, every root the records'",
          file=sys.stderr)
    return 0


def cmd_checksum(args: argparse.Namespace) -> int:
    views = views_named(args.view)
    with runtime_of_ledger() as runtime:
        runtime.projector.catch_up()
        print(f"checksum: {views_checksum(runtime.storage.view_store, views)}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    reads_ok = True  # the read chains are checked by a whole scan (no --tenant)
    with runtime_of_ledger() as runtime:
        history = runtime.ledger.history
        if args.tenant is not None:
            checks = [asyncio.run(history.verify(OPERATOR, args.tenant))]
            checks[0].name = args.tenant
        else:
            total = runtime.storage.event_source.max_position()
            with progress_bar("verify", total) as advance:
                scan = asyncio.run(history.verify_all(OPERATOR, progress=advance))
            checks = list(scan.checks.values())
            reads, logs = scan.reads, scan.logs
            reads_ok = reads.ok and logs.ok
            if reads.ok:
                print(f"ok      read records: {reads.records} in {len(reads.heads)} chains"
                      f" ({reads.unchained} from before the chains)")
            else:
                print(f"BROKEN  read records: first bad position {reads.first_bad_position}"
                      f" ({reads.reason})")
            if logs.ok:
                print(f"ok      transparency logs: {len(logs.heads)} logs, {logs.leaves}"
                      " leaves, every head and checkpoint the records' root")
            else:
                print(f"BROKEN  transparency logs: first bad position"
                      f" {logs.first_bad_position} ({logs.reason})")
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
    return EXIT_BROKEN if broken or not reads_ok else 0


def cmd_tenant_create(args: argparse.Namespace) -> int:
    with runtime_of_ledger() as runtime:
        created_at = asyncio.run(runtime.ledger.tenants.open(OPERATOR, args.tenant, cli_request()))
    print(f"{args.tenant} {created_at}")
    return 0


def cmd_tenant_list(args: argparse.Namespace) -> int:
    with runtime_of_ledger() as runtime:
        for tenant in asyncio.run(runtime.ledger.tenants.list_all(OPERATOR)):
            state = f"shredded {tenant.shredded_at}" if tenant.shredded_at else "live"
            print(f"{tenant.tenant}\t{tenant.created_at}\t{state}")
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    with runtime_of_ledger() as runtime:
        issued = asyncio.run(runtime.ledger.tokens.issue(
            OPERATOR, args.role, args.tenant, args.ttl_seconds, args.description, cli_request()))
    print(issued.token)
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    # A token itself may be given (``-``: read from stdin, out of the process list); only
    # its id is ever printed.
    token = sys.stdin.readline().strip() if args.token == FROM_STDIN else args.token
    with runtime_of_ledger() as runtime:
        tokens = runtime.ledger.tokens
        token_id = asyncio.run(
            tokens.revoke_any(OPERATOR, token, cli_request()) if args.tenant is None
            else tokens.revoke(OPERATOR, args.tenant, token, cli_request()))
    print(f"revoked {token_id}")
    return 0


def cmd_token_aws_credentials(args: argparse.Namespace) -> int:
    """The AWS key pair a tenant token derives (no storage needed: the holder of the token
    computes what the server stored wrapped when it issued it)."""
    token = sys.stdin.readline().strip() if args.token == FROM_STDIN else args.token
    access_key_id, secret = aws_key_pair(token)
    print(f"export AWS_ACCESS_KEY_ID={access_key_id}")
    print(f"export AWS_SECRET_ACCESS_KEY={secret}")
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    with runtime_of_ledger() as runtime:
        records = asyncio.run(runtime.ledger.tokens.list_all(OPERATOR, args.tenant))
    for r in records:  # one line each; the description last, as a JSON string
        fields = (r.token_id, r.role, r.tenant, r.created_at, r.created_by, r.expires_at,
                  r.revoked_at, r.revoked_by)
        print("\t".join("-" if field is None else field for field in fields),
              json.dumps(r.description, ensure_ascii=False), sep="\t")
    return 0


def cmd_keys_rotate_master(args: argparse.Namespace) -> int:
    with runtime_of_ledger() as runtime:
        switched = asyncio.run(runtime.ledger.keys.rotate_master(OPERATOR))
    if switched.retired is None:
        print(f"master key {switched.in_force} was in force already; re-wrapped"
              f" {switched.rewrapped} tenant keys; nothing retired")
    else:
        print(f"re-wrapped {switched.rewrapped} tenant keys under master key"
              f" {switched.in_force}, now in force; retired master key {switched.retired}")
    return 0


def cmd_keys_rotate_tenant(args: argparse.Namespace) -> int:
    with runtime_of_ledger() as runtime:
        version = asyncio.run(runtime.ledger.tenants.rotate_key(OPERATOR, args.tenant,
                                                                cli_request()))
    print(f"key_version: {version}")
    return 0
