"""Checkpoints in the C2SP ``tlog-checkpoint`` form (origin, tree size, base64 root), and
C2SP signed notes with Ed25519 keys: the log's signature (``name+keyid+base64(0x01 ||
key)`` verifier keys) and witnesses' timestamped cosignatures (C2SP
``tlog-cosignature``, type 0x04)."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from secrets_ledger.verifier.errors import VerificationError

HASH_BYTES = 32
ED25519 = 0x01  # the signed-note signature type of Ed25519
COSIGNATURE = 0x04  # a witness's timestamped Ed25519 cosignature (tlog-cosignature v1)
MAX_SIGNATURES = 64


# ---- checkpoints (C2SP tlog-checkpoint) --------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode("ascii"),
                 *self.extensions]
        return "\n".join(lines) + "\n"


def parse_checkpoint(text: str) -> Checkpoint:
    lines = text.split("\n")
    if len(lines) < 4 or lines[-1] != "" or not lines[0] or not lines[1].isdigit() or (
            len(lines[1]) > 1 and lines[1].startswith("0")):
        raise VerificationError("not a checkpoint")
    try:
        root = base64.b64decode(lines[2], validate=True)
    except binascii.Error:
        raise VerificationError("the checkpoint's root is not base64") from None
    if len(root) != HASH_BYTES:
        raise VerificationError("the checkpoint's root is not a SHA-256 hash")
    return Checkpoint(lines[0], int(lines[1]), root, tuple(lines[3:-1]))


# ---- signed notes (C2SP signed-note, Ed25519) -------------------------------------------


def key_id(name: str, public_key: bytes, kind: int = ED25519) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([kind]) + public_key).digest()[:4]


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def verifier_key(name: str, public_key: Ed25519PublicKey, kind: int = ED25519) -> str:
    """The published form of a key: ``name+<key id hex>+base64(kind || public key)``
    (kind 0x01 signs notes, a log's; 0x04 cosigns checkpoints, a witness's)."""
    raw = _raw(public_key)
    return (f"{name}+{key_id(name, raw, kind).hex()}+"
            f"{base64.b64encode(bytes([kind]) + raw).decode('ascii')}")


@dataclass(frozen=True)
class Verifier:
    name: str
    id: bytes
    public_key: Ed25519PublicKey
    kind: int = ED25519


def parse_verifier_key(text: str) -> Verifier:
    parts = text.strip().split("+", 2)  # the base64 may hold "+"; a name may not
    try:
        name, hex_id, encoded = parts
        key = base64.b64decode(encoded, validate=True)
        wanted = bytes.fromhex(hex_id)
    except (ValueError, binascii.Error):
        raise VerificationError("not a verifier key (name+keyid+base64)") from None
    if (not name or len(key) != 33 or key[0] not in (ED25519, COSIGNATURE)
            or key_id(name, key[1:], key[0]) != wanted):
        raise VerificationError("not an Ed25519 verifier key, or its id does not match it")
    return Verifier(name, wanted, Ed25519PublicKey.from_public_bytes(key[1:]), key[0])


def sign_note(text: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """``text`` (ending in a newline) signed: the text, a blank line, a signature line."""
    if not text.endswith("\n"):
        raise VerificationError("a note's text ends with a newline")
    signature = private_key.sign(text.encode())
    raw = _raw(private_key.public_key())
    line = base64.b64encode(key_id(name, raw) + signature).decode("ascii")
    return f"{text}\n\u2014 {name} {line}\n"


def _cosigned_message(text: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n{text}".encode()


def cosign(text: str, name: str, private_key: Ed25519PrivateKey, timestamp: int) -> str:
    """A witness's cosignature line (tlog-cosignature v1) over a checkpoint's text."""
    signature = private_key.sign(_cosigned_message(text, timestamp))
    raw = _raw(private_key.public_key())
    encoded = base64.b64encode(key_id(name, raw, COSIGNATURE) + timestamp.to_bytes(8, "big")
                               + signature).decode("ascii")
    return f"\u2014 {name} {encoded}\n"


def open_note(note: str, verifiers: Sequence[Verifier]) -> tuple[str, list[str]]:
    """The note's text and the names of the known keys whose signatures (or witnesses'
    cosignatures) verify. A known key's bad signature fails the whole note; so does no
    known key's signature at all."""
    text, sep, block = note.rpartition("\n\n")
    if not sep or not block.endswith("\n"):
        raise VerificationError("not a signed note")
    text += "\n"
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise VerificationError("too many signatures")
    known: Mapping[tuple[str, bytes], Verifier] = {(v.name, v.id): v for v in verifiers}
    signed: list[str] = []
    for line in lines:
        if not line.startswith("\u2014 "):
            raise VerificationError("not a signature line")
        name, _, encoded = line[2:].rpartition(" ")
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise VerificationError("a signature is not base64") from None
        verifier = known.get((name, raw[:4]))
        if verifier is None:
            continue  # unknown keys are ignored, as the format says
        if verifier.kind == COSIGNATURE:
            signature = raw[12:]
            message = _cosigned_message(text, int.from_bytes(raw[4:12], "big"))
        else:
            signature, message = raw[4:], text.encode()
        try:
            verifier.public_key.verify(signature, message)
        except InvalidSignature:
            raise VerificationError(f"the signature of {name} does not verify") from None
        signed.append(name)
    if not signed:
        raise VerificationError("no known key signed this note")
    return text, signed
