"""The command line's transparency-log verbs: the log key, checkpoints, and a witness."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from secrets_ledger.adapters.log_keys import signer_key_text
from secrets_ledger.api.cli.commands import OPERATOR, CommandFailed, runtime_of_ledger
from secrets_ledger.core.settings import Settings
from secrets_ledger.verifier import VerificationError, parse_verifier_key


def cmd_log_key_show(args: argparse.Namespace) -> int:
    """Prints the verifier keys (in use, then retired): what auditors trust."""
    with runtime_of_ledger() as runtime:
        for key in runtime.ledger.transparency.log_keys():
            print(key)
    return 0


def cmd_log_key_rotate(args: argparse.Namespace) -> int:
    with runtime_of_ledger() as runtime:
        print(asyncio.run(runtime.ledger.transparency.rotate_log_key(OPERATOR)))
    return 0


def cmd_log_key_new(args: argparse.Namespace) -> int:
    """Prints a new signer key, for LEDGER_LOG_KEY (the environment mode's rotation)."""
    print(signer_key_text(args.name or Settings().log_name, Ed25519PrivateKey.generate()))
    return 0


def cmd_checkpoint(args: argparse.Namespace) -> int:
    """Prints a tenant log's latest signed checkpoint (signing one if none covers it)."""
    with runtime_of_ledger() as runtime:
        runtime.ledger.checkpointer.sign_round()
        latest = asyncio.run(runtime.ledger.transparency.checkpoint(OPERATOR, args.tenant))
    print(latest.note, end="")
    return 0


def cmd_witness(args: argparse.Namespace) -> int:
    import uvicorn

    from secrets_ledger.witness import Witness, witness_app

    try:
        keys = [parse_verifier_key(key) for key in args.log_key]
    except VerificationError as error:
        raise CommandFailed(f"--log-key: {error}") from None
    witness = Witness(Path(args.data_dir), args.name, keys, args.origin_prefix)
    print(f"witness key: {witness.verifier_key}", flush=True)
    uvicorn.run(witness_app(witness), host=args.host, port=args.port, log_level="warning")
    return 0


def add_log_verbs(sub: argparse._SubParsersAction[Any],
                  parser_class: type[argparse.ArgumentParser]) -> None:
    log_key = sub.add_parser("log-key", help="the transparency logs' signing key"
                             ).add_subparsers(dest="action", required=True,
                                              parser_class=parser_class)
    log_key.add_parser("show", help="print the verifier keys auditors trust"
                       ).set_defaults(run=cmd_log_key_show)
    log_key.add_parser("rotate", help="sign with a new key from now on (embedded mode)"
                       ).set_defaults(run=cmd_log_key_rotate)
    new = log_key.add_parser("new", help="print a new signer key for LEDGER_LOG_KEY")
    new.add_argument("--name", help="the key's name (default: LEDGER_LOG_NAME)")
    new.set_defaults(run=cmd_log_key_new)
    checkpoint = sub.add_parser("checkpoint", help="print a tenant log's signed checkpoint")
    checkpoint.add_argument("--tenant", required=True)
    checkpoint.set_defaults(run=cmd_checkpoint)
    witness = sub.add_parser("witness", help="run a transparency-log witness (C2SP)")
    witness.add_argument("--data-dir", required=True, help="its key and state")
    witness.add_argument("--name", default="secrets-ledger-witness")
    witness.add_argument("--log-key", action="append", required=True,
                         help="a ledger's verifier key (`log-key show`); repeatable")
    witness.add_argument("--origin-prefix", required=True,
                         help="the logs it witnesses, e.g. secrets-ledger/tenants/")
    witness.add_argument("--host", default="127.0.0.1")
    witness.add_argument("--port", type=int, default=8300)
    witness.set_defaults(run=cmd_witness)
