"""AES-256-GCM, as explicit as the AEAD API it wraps: key, nonce, associated data.

Sealed material is ``nonce || ciphertext || tag``. Every failure to open, whatever
its cause, is the one opaque :class:`CannotOpen`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.errors import CannotOpen

KEY_BYTES = 32
NONCE_BYTES = 12
RANDOM_POOL_BYTES = 4096


class _RandomPool:
    """Bytes of ``os.urandom``, drawn from the operating system 4 KiB at a time.

    Writing one value takes four random draws (a data key id, the data key, a nonce for
    wrapping it and one for sealing the value), all in the one writer thread that every
    concurrent write waits on. Each ``os.urandom`` call releases the GIL around its
    system call, which hands the interpreter to another thread and makes the writer
    wait to get it back. The bytes handed out here are the same CSPRNG output, each
    byte handed out once and erased from the pool as it is; a forked child process
    starts with an empty pool, so it never reuses its parent's bytes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pool = bytearray()
        self._used = 0
        self._pid = os.getpid()

    def take(self, count: int) -> bytes:
        if count > RANDOM_POOL_BYTES:
            return os.urandom(count)
        with self._lock:
            if self._used + count > len(self._pool) or self._pid != os.getpid():
                self._erase()
                self._pool = bytearray(os.urandom(RANDOM_POOL_BYTES))
                self._used, self._pid = 0, os.getpid()
            start, self._used = self._used, self._used + count
            drawn = bytes(self._pool[start:self._used])
            self._pool[start:self._used] = bytes(count)
            return drawn

    def _erase(self) -> None:
        self._pool[:] = bytes(len(self._pool))
        self._used = len(self._pool)

    def forget(self) -> None:
        """In a forked child: drop the parent's pool (the lock may be held by a thread
        that does not exist in the child, so it is replaced, not taken)."""
        self._lock = threading.Lock()
        self._erase()


_random_pool = _RandomPool()
os.register_at_fork(after_in_child=_random_pool.forget)


def random_bytes(count: int) -> bytes:
    """``count`` bytes from the operating system's CSPRNG (see ``_RandomPool``)."""
    return _random_pool.take(count)


def generate_key() -> bytes:
    return random_bytes(KEY_BYTES)


def seal(key: bytes, plaintext: bytes, associated_data: bytes) -> bytes:
    nonce = random_bytes(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated_data)


def open_sealed(key: bytes, sealed: bytes, associated_data: bytes) -> bytes:
    if len(key) != KEY_BYTES or len(sealed) < NONCE_BYTES + 16:
        raise CannotOpen
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated_data)
    except InvalidTag:
        raise CannotOpen from None


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
