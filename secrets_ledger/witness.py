"""A transparency-log witness (C2SP ``tlog-witness``, the witness's side):
``secrets-ledger witness`` runs it.

It trusts the log keys it is given for the origins that start with a prefix (one per
ledger: ``<log name>/tenants/``), and keeps, per origin, the latest checkpoint it
cosigned, in a SQLite file of its own. It cosigns a checkpoint only if the log key
signed it and a consistency proof joins it to that latest one, checked and recorded in
one transaction: a log that rewrote its history (a fork, a rollback) gets 409 or 422
and no cosignature, and whoever requires this witness's cosignature sees no fork.

Its own key is an Ed25519 cosigner key (type 0x04), in ``witness.key`` (0600) beside
its state, made on first use; its verifier key is printed at start.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from secrets_ledger.adapters.masterkeys import write_private_file
from secrets_ledger.verifier import (
    COSIGNATURE,
    Checkpoint,
    VerificationError,
    Verifier,
    cosign,
    open_note,
    parse_checkpoint,
    verifier_key,
    verify_consistency,
)

MAX_BODY = 64 * 1024
MAX_PROOF_LINES = 63
KEY_FILE = "witness.key"
STATE_FILE = "witness.sqlite"


@dataclass(frozen=True)
class Refusal(Exception):
    status: int
    text: str
    media_type: str = "text/plain"


def load_key(folder: Path) -> Ed25519PrivateKey:
    """The witness's key from ``witness.key`` (base64 of its seed), made 0600 if absent."""
    path = folder / KEY_FILE
    if not path.exists():
        seed = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw,
                                                          NoEncryption())
        with contextlib.suppress(FileExistsError):  # another witness process made it
            write_private_file(path, base64.b64encode(seed).decode("ascii"))
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(path.read_text("ascii")))


class Witness:
    def __init__(self, folder: Path, name: str, log_keys: Sequence[Verifier],
                 origin_prefix: str) -> None:
        self.name = name
        self.key = load_key(folder)
        self.log_keys = list(log_keys)
        self.origin_prefix = origin_prefix
        self._db = sqlite3.connect(folder / STATE_FILE, check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("CREATE TABLE IF NOT EXISTS cosigned (origin TEXT PRIMARY KEY,"
                         " size INTEGER NOT NULL, root BLOB NOT NULL, note TEXT NOT NULL)")
        self._lock = threading.Lock()

    @property
    def verifier_key(self) -> str:
        return verifier_key(self.name, self.key.public_key(), COSIGNATURE)

    def add_checkpoint(self, body: str) -> str:
        """The cosignature line of a submitted checkpoint, or a ``Refusal``."""
        head, sep, note = body.partition("\n\n")
        lines = head.split("\n")
        if not sep or not lines[0].startswith("old ") or len(lines) - 1 > MAX_PROOF_LINES:
            raise Refusal(400, "expected: old <size>, proof lines, a blank line, a checkpoint")
        try:
            old = int(lines[0][4:])
            proof = [base64.b64decode(line, validate=True) for line in lines[1:]]
            text = note[:note.index("\n\n") + 1]
            checkpoint = parse_checkpoint(text)
        except (ValueError, binascii.Error, VerificationError):
            raise Refusal(400, "the request is malformed") from None
        if not checkpoint.origin.startswith(self.origin_prefix):
            raise Refusal(404, "unknown log")
        try:
            open_note(note, self.log_keys)
        except VerificationError:
            raise Refusal(403, "no trusted log key signed the checkpoint") from None
        if old < 0 or old > checkpoint.size:
            raise Refusal(400, "the old size is above the checkpoint's")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                line = self._check_and_cosign(old, proof, checkpoint, text, note)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        return line

    def _check_and_cosign(self, old: int, proof: list[bytes], checkpoint: Checkpoint,
                          text: str, note: str) -> str:
        row = self._db.execute("SELECT size, root FROM cosigned WHERE origin = ?",
                               (checkpoint.origin,)).fetchone()
        size, root = (0, b"") if row is None else (int(row[0]), bytes(row[1]))
        if old != size:
            raise Refusal(409, f"{size}\n", "text/x.tlog.size")
        if old == 0:
            if proof:
                raise Refusal(422, "a proof from size 0 must be empty")
        elif old == checkpoint.size:
            if proof or root != checkpoint.root:
                raise Refusal(409, f"{size}\n", "text/x.tlog.size")
        else:
            try:
                verify_consistency(old, checkpoint.size, proof, root, checkpoint.root)
            except VerificationError:
                raise Refusal(422, "the consistency proof does not verify") from None
        self._db.execute("INSERT INTO cosigned (origin, size, root, note) VALUES (?, ?, ?, ?)"
                         " ON CONFLICT (origin) DO UPDATE SET size = excluded.size,"
                         " root = excluded.root, note = excluded.note",
                         (checkpoint.origin, checkpoint.size, checkpoint.root, note))
        return cosign(text, self.name, self.key, int(time.time()))


def witness_app(witness: Witness) -> Starlette:
    async def add_checkpoint(request: Request) -> Response:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return PlainTextResponse("the request is too large", 413)
        try:
            line = witness.add_checkpoint(body.decode("utf-8"))
        except UnicodeDecodeError:
            return PlainTextResponse("the request is not UTF-8", 400)
        except Refusal as refusal:
            return PlainTextResponse(refusal.text, refusal.status, media_type=refusal.media_type)
        return PlainTextResponse(line)

    return Starlette(routes=[Route("/add-checkpoint", add_checkpoint, methods=["POST"])])
