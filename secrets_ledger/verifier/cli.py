"""The auditors' command line: ``python -m secrets_ledger.verifier`` (or
``secrets-ledger-verify``), offline, over what the server sent, saved to files.

    checkpoint NOTE [--consistency PROOF]   the log key (and witnesses) signed it, and
                                            it extends the checkpoint last remembered
    read ANSWER --tenant T [--consistency PROOF]
                                            a read's value is the one the log recorded
    root LEAVES... --checkpoint NOTE        every leaf recomputed from its record, and
                                            their root is the checkpoint's

Trust comes from ``--log-key`` (repeatable), ``--witness-key`` (repeatable) and
``--quorum``. ``--state FILE`` remembers the last checkpoint verified per log; a later
one is accepted only with a consistency proof from it. Exit 0 when everything holds, 1
when something does not (one line says what), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from secrets_ledger.verifier.checks import (
    Trusted,
    recompute_root,
    verify_checkpoint,
    verify_extends,
    verify_read,
)
from secrets_ledger.verifier.errors import VerificationError
from secrets_ledger.verifier.notes import Checkpoint, parse_checkpoint, parse_verifier_key


def _load(path: str) -> str:
    return sys.stdin.read() if path == "-" else Path(path).read_text("utf-8")


def _json(path: str) -> Any:
    try:
        return json.loads(_load(path))
    except json.JSONDecodeError:
        raise VerificationError(f"{path} is not JSON") from None


def _note(path: str) -> str:
    """A checkpoint's note: a file of the note itself, or the server's JSON holding it."""
    text = _load(path)
    return str(json.loads(text)["checkpoint"]) if text.lstrip().startswith("{") else text


class State:
    """The last checkpoint verified, per origin, in a JSON file of their texts."""

    def __init__(self, path: str | None) -> None:
        self.path = None if path is None else Path(path)
        self.known: dict[str, str] = {}
        if self.path is not None and self.path.exists():
            self.known = json.loads(self.path.read_text("utf-8"))

    def advance(self, checkpoint: Checkpoint, consistency: str | None) -> str:
        remembered = self.known.get(checkpoint.origin)
        said = "no checkpoint of this log remembered before"
        if remembered is not None:
            old = parse_checkpoint(remembered)
            if old.size == checkpoint.size and old.root == checkpoint.root:
                return "the same checkpoint as remembered"
            if consistency is None:
                raise VerificationError(f"a checkpoint of size {checkpoint.size} after one of"
                                        f" size {old.size}: give --consistency to prove it")
            verify_extends(old, checkpoint, _json(consistency)["proof"])
            said = f"extends the remembered checkpoint of size {old.size}"
        if self.path is not None:
            self.known[checkpoint.origin] = checkpoint.text()
            self.path.write_text(json.dumps(self.known, indent=2), "utf-8")
        return said


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="secrets-ledger-verify", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--log-key", action="append", default=[], required=True)
    parser.add_argument("--witness-key", action="append", default=[])
    parser.add_argument("--quorum", type=int, default=0)
    parser.add_argument("--origin-prefix", help="e.g. secrets-ledger/tenants/")
    parser.add_argument("--state", help="the file remembering the last checkpoints")
    verbs = parser.add_subparsers(dest="verb", required=True)
    checkpoint = verbs.add_parser("checkpoint")
    checkpoint.add_argument("note")
    checkpoint.add_argument("--tenant")
    checkpoint.add_argument("--consistency")
    read = verbs.add_parser("read")
    read.add_argument("answer")
    read.add_argument("--tenant", required=True)
    read.add_argument("--consistency")
    root = verbs.add_parser("root")
    root.add_argument("leaves", nargs="+")
    root.add_argument("--checkpoint", required=True)
    args = parser.parse_args(argv)
    try:
        trusted = Trusted([parse_verifier_key(k) for k in args.log_key],
                          [parse_verifier_key(k) for k in args.witness_key], args.quorum)
        print(f"ok: {_run(args, trusted)}")
        return 0
    except (VerificationError, KeyError, TypeError, ValueError, OSError) as error:
        reason = str(error) if isinstance(error, VerificationError | OSError) else (
            f"malformed input ({type(error).__name__})")
        print(f"FAILED: {reason}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, trusted: Trusted) -> str:
    state = State(args.state)
    prefix = args.origin_prefix
    if args.verb == "checkpoint":
        origin = None if prefix is None or args.tenant is None else prefix + args.tenant
        found = verify_checkpoint(_note(args.note), trusted, origin)
        return (f"checkpoint {found.origin} size {found.size} signed;"
                f" {state.advance(found, args.consistency)}")
    if args.verb == "read":
        answer = _json(args.answer)
        found = verify_read(args.tenant, answer, trusted, prefix)
        return (f"{answer['key']} version {answer['version']} is leaf"
                f" {answer['proof']['leaf_index']} of {found.origin} size {found.size};"
                f" {state.advance(found, args.consistency)}")
    found = verify_checkpoint(_note(args.checkpoint), trusted)
    leaves = [leaf for path in args.leaves for leaf in _json(path)["leaves"]]
    if [leaf["leaf_index"] for leaf in leaves] != list(range(len(leaves))):
        raise VerificationError("the leaves are not every leaf from 0, in order")
    if len(leaves) != found.size:
        raise VerificationError(f"{len(leaves)} leaves for a checkpoint of size {found.size}")
    if recompute_root([leaf["record"] for leaf in leaves],
                      [leaf["leaf_hash"] for leaf in leaves]) != found.root:
        raise VerificationError("the leaves' root is not the checkpoint's")
    return f"{len(leaves)} leaves recomputed to the root of {found.origin} size {found.size}"
