"""The sub-commands of ``secrets-ledger``: each opens the runtime, calls the core as the
operator at the machine (actor ``cli``), and prints the outcome. Stdout carries only
machine-readable results (a new token, a checksum); progress goes to stderr."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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
from secrets_ledger.domain.verification import ChainCheck
from secrets_ledger.grouped_runtime import GroupedRuntime, group_settings, open_runtime
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


def runtime_of_ledger(follow: bool = False) -> LedgerRuntime | GroupedRuntime:
    settings = Settings()
    if not holds_a_ledger(settings):
        raise CommandFailed(
            f"no ledger in {settings.data_dir.resolve()}: set LEDGER_DATA_DIR (or"
            " LEDGER_DATABASE_URL) to your ledger, or create one here with"
            " `secrets-ledger migrate` (or `serve`)")
    return open_runtime(settings, follow=follow)


def labelled(runtime: LedgerRuntime | GroupedRuntime) -> list[tuple[str, LedgerRuntime]]:
    """Each tenant group's runtime, with the prefix its lines get (none for one group)."""
    groups = runtime.groups
    return [(f"[{name}] " if len(groups) > 1 else "", group) for name, group in groups.items()]


def cmd_serve(args: argparse.Namespace) -> int:
    from secrets_ledger.api.server import serve  # uvicorn is only needed here

    return serve(Settings(), args.host, args.port, follow=not args.no_projector,
                 aws_port=args.aws_port, vault_port=args.vault_port)


def cmd_migrate(args: argparse.Namespace) -> int:
    from secrets_ledger.adapters.storage import open_storage

    settings = Settings()
    groups = group_settings(settings) if settings.groups else {"": settings}
    for name, group in groups.items():
        label = f"[{name}] " if len(groups) > 1 else ""
        storage = open_storage(group, run_migrations=False)
        try:
            # The progress bar shows only if the logs of older records are being built.
            with progress_bar(f"{label}build transparency logs",
                              storage.streams.max_position()) as advance:
                applied = storage.migrate(advance)
        finally:
            storage.close()
        print(f"{label}applied: {', '.join(applied) if applied else 'nothing (up to date)'}")
    return 0


def cmd_project(args: argparse.Namespace) -> int:
    if args.once:
        with runtime_of_ledger() as runtime:
            for label, group in labelled(runtime):
                print(f"{label}applied: {group.projector.catch_up()} events")
        return 0
    # A projector thread per group, until ^C.
    with runtime_of_ledger(follow=True), contextlib.suppress(KeyboardInterrupt):
        threading.Event().wait()
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    views = views_named(args.view)
    with runtime_of_ledger() as runtime:
        for label, group in labelled(runtime):
            total = group.storage.event_source.max_position()
            with progress_bar(f"{label}replay {args.view}", total) as advance:
                try:
                    checksum, logs = group.replay(views, args.workers, advance)
                except DamagedEvent as damaged:
                    raise CommandFailed(f"{label}{damaged}") from None
            print(f"{label}checksum: {checksum}")
            if not logs.ok:
                raise CommandFailed(f"{label}the transparency logs do not match the records:"
                                    f" first bad position {logs.first_bad_position}"
                                    f" ({logs.reason})")
            print(f"{label}logs: {len(logs.heads)} logs, {logs.leaves} leaves, every root"
                  " the records'", file=sys.stderr)
    return 0


def cmd_checksum(args: argparse.Namespace) -> int:
    views = views_named(args.view)
    with runtime_of_ledger() as runtime:
        for label, group in labelled(runtime):
            group.projector.catch_up()
            print(f"{label}checksum: {views_checksum(group.storage.view_store, views)}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    with runtime_of_ledger() as runtime:
        if args.tenant is not None:
            check = asyncio.run(runtime.ledger.history.verify(OPERATOR, args.tenant))
            check.name = args.tenant
            return _verdict([("", check)], True)
        checks: list[tuple[str, ChainCheck]] = []
        scans_ok = True  # the read chains and the logs: checked by a whole scan
        for label, group in labelled(runtime):
            total = group.storage.event_source.max_position()
            with progress_bar(f"{label}verify", total) as advance:
                scan = asyncio.run(group.ledger.history.verify_all(OPERATOR, progress=advance))
            checks += [(label, check) for check in scan.checks.values()]
            reads, logs = scan.reads, scan.logs
            scans_ok = scans_ok and reads.ok and logs.ok
            if reads.ok:
                print(f"{label}ok      read records: {reads.records} in {len(reads.heads)}"
                      f" chains ({reads.unchained} from before the chains)")
            else:
                print(f"{label}BROKEN  read records: first bad position"
                      f" {reads.first_bad_position} ({reads.reason})")
            if logs.ok:
                print(f"{label}ok      transparency logs: {len(logs.heads)} logs,"
                      f" {logs.leaves} leaves, every head and checkpoint the records' root")
            else:
                print(f"{label}BROKEN  transparency logs: first bad position"
                      f" {logs.first_bad_position} ({logs.reason})")
    return _verdict(checks, scans_ok)


def _verdict(checks: list[tuple[str, ChainCheck]], scans_ok: bool) -> int:
    broken = 0
    for group, check in checks:
        label = check.name or check.tenant_id
        if check.ok:
            print(f"{group}ok      {label}: {check.events} events, head {check.head}")
        else:
            broken += 1
            print(f"{group}BROKEN  {label}: first bad position {check.first_bad_position}"
                  f" of {check.events} ({check.reason})")
    print(f"{len(checks) - broken} intact, {broken} broken")
    return EXIT_BROKEN if broken or not scans_ok else 0


def cmd_tenant_move(args: argparse.Namespace) -> int:
    with runtime_of_ledger(follow=True) as runtime:
        if not isinstance(runtime, GroupedRuntime):
            raise CommandFailed("there are no tenant groups to move it between: configure"
                                " LEDGER_GROUPS (README: Deployments)")
        moved = asyncio.run(runtime.ledger.grouped_tenants.move(OPERATOR, args.tenant,
                                                                args.to, cli_request()))
    print(f"moved {args.tenant} from {moved.source} to {moved.target}: {moved.records}"
          f" records, {moved.events} events verified there; writes waited"
          f" {moved.unavailable_seconds:.2f} s; its keys and tokens erased in {moved.source}")
    return 0


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
