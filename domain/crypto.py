"""AES-256-GCM, as explicit as the AEAD API it wraps: key, nonce, associated data.

Sealed material is ``nonce || ciphertext || tag``. Every failure to open, whatever
its cause, is the one opaque :class:`CannotOpen`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from secrets_ledger.domain.errors import CannotOpen

KEY_BYTES = 32
NONCE_BYTES = 12


def generate_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def seal(key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data)


def open_sealed(key: bytes, sealed: bytes, associated_data: bytes) -> bytes:
    if len(key) != KEY_BYTES or len(sealed) < NONCE_BYTES + 16:
        raise CannotOpen
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated_data)
    except InvalidTag:
        raise CannotOpen from None


def commitment_opening(data_key: bytes, associated_data: bytes) -> bytes:
    """The opening of a value's commitment (``verifier.value_commitment``): derived from
    the value's own data key, so that it is there exactly as long as the value opens, and
    handed only to a reader of that value (from it nobody learns the key)."""
    return hmac.new(data_key, b"secrets-ledger opening\x00" + associated_data,
                    hashlib.sha256).digest()


def key_fingerprint(key: bytes) -> str:
    """A short public name for a key, to tell which master key wrapped a data key."""
    return hashlib.sha256(b"secrets-ledger key id\x00" + key).hexdigest()[:16]


# Associated data: binds each sealed blob to the one place it belongs, so that a blob
# copied to another tenant, key, version or key slot fails to open.
def value_aad(tenant_id: str, key: str, version: int) -> bytes:
    return f"value\x00{tenant_id}\x00{key}\x00{version}".encode()


def data_key_aad(tenant_id: str, dek_id: str) -> bytes:
    return f"data-key\x00{tenant_id}\x00{dek_id}".encode()


def tenant_key_aad(tenant_id: str, key_version: int) -> bytes:
    return f"tenant-key\x00{tenant_id}\x00{key_version}".encode()


def signing_key_aad(token_id: str) -> bytes:
    return f"aws-signing-key\x00{token_id}".encode()


def to_text(sealed: bytes) -> str:
    return base64.b64encode(sealed).decode("ascii")


def from_text(text: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise CannotOpen from None


def decode_master_key(text: str) -> bytes:
    """Parses a base64 master key; raises ValueError without echoing the text."""
    try:
        key = base64.b64decode(text.strip().encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise ValueError("master key is not base64") from None
    if len(key) != KEY_BYTES:
        raise ValueError("master key must be base64 of exactly 32 bytes")
    return key
