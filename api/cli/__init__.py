"""The ``secrets-ledger`` command: serve, migrate, project, replay, checksum, verify, tenant,
token, keys and import.

Expected failures (bad arguments, unreachable storage, a refused command) print one
line on stderr and exit 2; ``verify`` exits 1 when a chain is broken. Never a traceback
for an expected failure, never a secret value; a new token is the only secret printed,
on stdout, once.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

import pydantic

from secrets_ledger.adapters.postgres.parallel_replay import AUTO_MIN_EVENTS, MAX_WORKERS
from secrets_ledger.adapters.storage import STORAGE_ERRORS, explain_storage_error
from secrets_ledger.api.cli import commands
from secrets_ledger.api.cli.commands import CommandFailed
from secrets_ledger.api.cli.export_commands import add_backup_verb, add_export_verb
from secrets_ledger.api.cli.import_commands import add_import_verb
from secrets_ledger.api.cli.log_commands import add_log_verbs
from secrets_ledger.core.policy import TENANT_ROLES
from secrets_ledger.domain.errors import LedgerError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _workers(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"a whole number from 1 to {MAX_WORKERS}")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="secrets-ledger", description="An event-sourced secrets ledger.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    serve = sub.add_parser("serve", help="run the HTTP API (and the projector)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8200)
    serve.add_argument("--aws-port", type=int, default=None,
                       help="also serve the AWS Secrets Manager façade on this port")
    serve.add_argument("--vault-port", type=int, default=None,
                       help="also serve the Vault KV v2 façade on this port")
    serve.add_argument("--no-projector", action="store_true",
                       help="no projector thread: run `secrets-ledger project` beside it"
                       " (queries still catch the views up when they must)")
    serve.set_defaults(run=commands.cmd_serve)

    sub.add_parser("migrate", help="apply the schema migrations").set_defaults(
        run=commands.cmd_migrate)

    project = sub.add_parser("project", help="follow the event store into the views")
    project.add_argument("--once", action="store_true", help="catch up, then exit")
    project.set_defaults(run=commands.cmd_project)

    for name, run, text in (("replay", commands.cmd_replay, "rebuild views from position 0"),
                            ("checksum", commands.cmd_checksum,
                             "print the live views' checksum")):
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
    verify.set_defaults(run=commands.cmd_verify)

    tenant = sub.add_parser("tenant", help="tenants").add_subparsers(
        dest="action", required=True, parser_class=_Parser)
    create = tenant.add_parser("create", help="open a tenant")
    create.add_argument("tenant")
    create.set_defaults(run=commands.cmd_tenant_create)
    tenant.add_parser("list", help="list tenants").set_defaults(run=commands.cmd_tenant_list)
    move = tenant.add_parser("move", help="move a tenant to another tenant group (its keys"
                                          " and tokens are shredded where it was)")
    move.add_argument("tenant")
    move.add_argument("--to", required=True, help="the tenant group to move it to")
    move.set_defaults(run=commands.cmd_tenant_move)

    token = sub.add_parser("token", help="API tokens").add_subparsers(
        dest="action", required=True, parser_class=_Parser)
    token_create = token.add_parser("create", help="print a new token on stdout")
    token_create.add_argument("--role", choices=["admin", *TENANT_ROLES], required=True)
    token_create.add_argument("--tenant")
    token_create.add_argument("--ttl-seconds", type=int)
    token_create.add_argument("--description", default="")
    token_create.set_defaults(run=commands.cmd_token_create)
    token_revoke = token.add_parser("revoke", help="revoke a token (admin tokens too)")
    token_revoke.add_argument("--tenant", help="only if the token is one of this tenant's")
    token_revoke.add_argument("token", metavar="TOKEN",
                              help="its id (tok_...), the token itself, or - to read it"
                                   " from stdin")
    token_revoke.set_defaults(run=commands.cmd_token_revoke)
    token_aws = token.add_parser("aws-credentials",
                                 help="print the AWS key pair a tenant token derives")
    token_aws.add_argument("token", metavar="TOKEN",
                           help="the tenant token, or - to read it from stdin")
    token_aws.set_defaults(run=commands.cmd_token_aws_credentials)
    token_list = token.add_parser("list", help="list tokens (never their secrets)")
    token_list.add_argument("--tenant", help="only this tenant's tokens")
    token_list.set_defaults(run=commands.cmd_token_list)

    keys = sub.add_parser("keys", help="key management").add_subparsers(
        dest="action", required=True, parser_class=_Parser)
    keys.add_parser("rotate-master", help="re-wrap every tenant key under a new master key"
                    ).set_defaults(run=commands.cmd_keys_rotate_master)
    rotate_tenant = keys.add_parser("rotate-tenant", help="new writes use a new tenant key")
    rotate_tenant.add_argument("--tenant", required=True)
    rotate_tenant.set_defaults(run=commands.cmd_keys_rotate_tenant)

    add_import_verb(sub, _Parser)
    add_export_verb(sub, _Parser)
    add_backup_verb(sub, _Parser)
    add_log_verbs(sub, _Parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except (CommandFailed, LedgerError) as error:
        return _fail(str(error))
    except pydantic.ValidationError as error:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in error.errors())
        return _fail(f"invalid configuration: {fields}")
    except STORAGE_ERRORS as error:
        return _fail(f"storage unreachable: {explain_storage_error(error)}")
    except ValueError as error:
        return _fail(f"invalid configuration: {error}")
    return code


def _fail(message: str) -> int:
    print(f"secrets-ledger: {message}", file=sys.stderr)
    return EXIT_USAGE
