"""The independent verifier of a tenant's transparency log: what an auditor runs without
trusting the server, so it imports nothing from the rest of the project (only the
standard library and ``cryptography``; an import-linter contract keeps it so).

- Merkle trees as RFC 9162 section 2.1 defines them: leaf hash ``SHA-256(0x00 || leaf)``,
  interior ``SHA-256(0x01 || left || right)``; the root of a list of leaves, inclusion
  proofs and consistency proofs (made, for tests and for recomputing, and verified).
- Checkpoints in the C2SP ``tlog-checkpoint`` form (origin, tree size, base64 root), and
  C2SP signed notes with Ed25519 keys (``name+keyid+base64(0x01 || key)`` verifier keys).

Every failure is one ``VerificationError`` saying what did not hold.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

HASH_BYTES = 32
ED25519 = 0x01  # the signed-note signature type of Ed25519
MAX_SIGNATURES = 64


class VerificationError(Exception):
    """A proof, checkpoint or signature that does not hold."""


# ---- RFC 9162 Merkle trees -------------------------------------------------------------


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH of the leaves whose hashes are given (the empty tree: SHA-256 of nothing)."""
    if not leaf_hashes:
        return hashlib.sha256(b"").digest()
    level = list(leaf_hashes)
    # Pairing left to right, an odd last node promoted: the same tree as MTH's splits.
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def inclusion_proof(index: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PATH(index, D[n]) of RFC 9162 section 2.1.3.1."""
    if not 0 <= index < len(leaf_hashes):
        raise VerificationError("no such leaf")
    if len(leaf_hashes) == 1:
        return []
    k = _split(len(leaf_hashes))
    if index < k:
        return [*inclusion_proof(index, leaf_hashes[:k]), root_hash(leaf_hashes[k:])]
    return [*inclusion_proof(index - k, leaf_hashes[k:]), root_hash(leaf_hashes[:k])]


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes],
                     root: bytes) -> None:
    """That ``leaf`` (a leaf hash) is leaf ``index`` of the tree of ``size`` leaves whose
    root is ``root`` (RFC 9162 section 2.1.3.2)."""
    if not 0 <= index < size:
        raise VerificationError("the leaf index is outside the tree")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise VerificationError("the inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or not hmac.compare_digest(r, root):
        raise VerificationError("the inclusion proof does not lead to the root")


def consistency_proof(old_size: int, leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 section 2.1.4.1."""
    if not 0 < old_size <= len(leaf_hashes):
        raise VerificationError("no such tree size")
    return _subproof(old_size, leaf_hashes, True)


def _subproof(m: int, leaves: Sequence[bytes], whole: bool) -> list[bytes]:
    n = len(leaves)
    if m == n:
        return [] if whole else [root_hash(leaves)]
    k = _split(n)
    if m <= k:
        return [*_subproof(m, leaves[:k], whole), root_hash(leaves[k:])]
    return [*_subproof(m - k, leaves[k:], False), root_hash(leaves[:k])]


def verify_consistency(old_size: int, new_size: int, proof: Sequence[bytes],
                       old_root: bytes, new_root: bytes) -> None:
    """That the tree of ``old_size`` leaves (``old_root``) is a prefix of the tree of
    ``new_size`` leaves (``new_root``) (RFC 9162 section 2.1.4.2)."""
    if not 0 < old_size <= new_size:
        raise VerificationError("the tree sizes are not in order")
    if old_size == new_size:
        if proof or not hmac.compare_digest(old_root, new_root):
            raise VerificationError("two checkpoints of one size have different roots")
        return
    path = list(proof)
    if not path:
        raise VerificationError("the consistency proof is empty")
    if old_size & (old_size - 1) == 0:  # an exact power of two: its root starts the path
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError("the consistency proof is too long")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or not hmac.compare_digest(fr, old_root) or not hmac.compare_digest(sr,
                                                                                   new_root):
        raise VerificationError("the consistency proof does not join the two roots")


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


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ED25519]) + public_key).digest()[:4]


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    """The published form of a key: ``name+<key id hex>+base64(0x01 || public key)``."""
    raw = _raw(public_key)
    return (f"{name}+{key_id(name, raw).hex()}+"
            f"{base64.b64encode(bytes([ED25519]) + raw).decode('ascii')}")


@dataclass(frozen=True)
class Verifier:
    name: str
    id: bytes
    public_key: Ed25519PublicKey


def parse_verifier_key(text: str) -> Verifier:
    parts = text.strip().split("+", 2)  # the base64 may hold "+"; a name may not
    try:
        name, hex_id, encoded = parts
        key = base64.b64decode(encoded, validate=True)
        wanted = bytes.fromhex(hex_id)
    except (ValueError, binascii.Error):
        raise VerificationError("not a verifier key (name+keyid+base64)") from None
    if not name or len(key) != 33 or key[0] != ED25519 or key_id(name, key[1:]) != wanted:
        raise VerificationError("not an Ed25519 verifier key, or its id does not match it")
    return Verifier(name, wanted, Ed25519PublicKey.from_public_bytes(key[1:]))


def sign_note(text: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """``text`` (ending in a newline) signed: the text, a blank line, a signature line."""
    if not text.endswith("\n"):
        raise VerificationError("a note's text ends with a newline")
    signature = private_key.sign(text.encode())
    raw = _raw(private_key.public_key())
    line = base64.b64encode(key_id(name, raw) + signature).decode("ascii")
    return f"{text}\n\u2014 {name} {line}\n"


def open_note(note: str, verifiers: Sequence[Verifier]) -> tuple[str, list[str]]:
    """The note's text and the names of the known keys whose signatures verify. A known
    key's bad signature fails the whole note; so does no known key's signature at all."""
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
        try:
            verifier.public_key.verify(raw[4:], text.encode())
        except InvalidSignature:
            raise VerificationError(f"the signature of {name} does not verify") from None
        signed.append(name)
    if not signed:
        raise VerificationError("no known key signed this note")
    return text, signed
