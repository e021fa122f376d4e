"""The log key (``log_ports.LogSigner``): the Ed25519 key that signs every tenant log's
checkpoints. Outside the database, like the master key: ``LEDGER_LOG_KEY``, or in the
embedded default a file ``log.key`` (mode 0600) in the data directory, generated on
first use. Its text is a signed-note signer key, ``PRIVATE+KEY+<name>+<key id>+<base64
of 0x01 and the 32-byte seed>`` (the form Go's ``golang.org/x/mod/sumdb/note`` reads).

Rotation (``secrets-ledger log-key rotate``) makes a new key and keeps the old one's
public verifier key in ``log.key.retired`` (``LEDGER_RETIRED_LOG_KEYS`` in the
environment mode), published beside the new one, so that checkpoints signed before the
rotation still verify. The tree does not change: a consistency proof joins a checkpoint
signed by the old key to one signed by the new.
"""

from __future__ import annotations

import base64
import contextlib
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from secrets_ledger.adapters.masterkeys import write_private_file
from secrets_ledger.core.settings import Settings
from secrets_ledger.domain.errors import InvalidRequest
from secrets_ledger.verifier import ED25519, key_id, sign_note, verifier_key

LOG_KEY_FILE = "log.key"
RETIRED_LOG_KEYS_FILE = "log.key.retired"


def signer_key_text(name: str, private_key: Ed25519PrivateKey) -> str:
    seed = private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    public = verifier_key(name, private_key.public_key()).split("+")[1]
    encoded = base64.b64encode(bytes([ED25519]) + seed).decode("ascii")
    return f"PRIVATE+KEY+{name}+{public}+{encoded}"


def parse_signer_key(text: str) -> tuple[str, Ed25519PrivateKey]:
    """(name, key) of a signer key's text; InvalidRequest, never echoing it, if malformed."""
    parts = text.strip().split("+", 4)
    try:
        prefix, kind, name, hex_id, encoded = parts
        raw = base64.b64decode(encoded, validate=True)
        private_key = Ed25519PrivateKey.from_private_bytes(raw[1:])
    except ValueError:
        raise InvalidRequest("the log key is not a signer key"
                             " (PRIVATE+KEY+name+id+base64)") from None
    public = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    if (prefix, kind) != ("PRIVATE", "KEY") or not name or raw[:1] != bytes([ED25519]) or (
            key_id(name, public).hex() != hex_id):
        raise InvalidRequest("the log key is not an Ed25519 signer key, or its id does"
                             " not match it")
    return name, private_key


class LogKey:
    def __init__(self, settings: Settings) -> None:
        self._data_dir = settings.data_dir
        self._env = (None if settings.log_key is None
                     else settings.log_key.get_secret_value())
        self._retired_env = settings.retired_log_keys
        self._default_name = settings.log_name
        self.reload()

    @property
    def source(self) -> str:
        return "LEDGER_LOG_KEY" if self._env is not None else str(self._path)

    @property
    def _path(self) -> Path:
        return self._data_dir / LOG_KEY_FILE

    def _file_signature(self) -> object:
        try:
            found = self._path.stat()
        except FileNotFoundError:
            return None
        return (found.st_ino, found.st_mtime_ns)

    def refresh(self) -> None:
        """Embedded mode: takes the key file again if a rotation replaced it (a running
        server signs with the new key within a heartbeat)."""
        if self._env is None and self._file_signature() != self._seen:
            self.reload()

    def reload(self) -> None:
        self._seen = self._file_signature()
        if self._env is not None:
            text = self._env
        else:
            if not self._path.exists():
                with contextlib.suppress(FileExistsError):  # another process made it
                    write_private_file(self._path, signer_key_text(
                        self._default_name, Ed25519PrivateKey.generate()))
            self._seen = self._file_signature()
            text = self._path.read_text("ascii")
        self._name, self._key = parse_signer_key(text)

    @property
    def name(self) -> str:
        return self._name

    def sign(self, text: str) -> str:
        return sign_note(text, self._name, self._key)

    def published(self) -> list[str]:
        current = verifier_key(self._name, self._key.public_key())
        retired = self._retired_env
        if self._env is None:
            with contextlib.suppress(FileNotFoundError):
                retired = (self._data_dir / RETIRED_LOG_KEYS_FILE).read_text("ascii").split()
        return [current, *[key for key in retired if key != current]]

    def rotate(self) -> str:
        """Embedded mode: a new key in ``log.key``; the old one's verifier key is kept in
        ``log.key.retired``. Returns the new verifier key."""
        if self._env is not None:
            raise InvalidRequest("the log key comes from LEDGER_LOG_KEY: set it to a new key"
                                 " (`secrets-ledger log-key new`) and list the old verifier"
                                 " key in LEDGER_RETIRED_LOG_KEYS")
        old = verifier_key(self._name, self._key.public_key())
        with (self._data_dir / RETIRED_LOG_KEYS_FILE).open("a", encoding="ascii") as retired:
            retired.write(old + "\n")
        new_text = signer_key_text(self._name, Ed25519PrivateKey.generate())
        following = self._path.with_name(LOG_KEY_FILE + ".next")
        with contextlib.suppress(FileNotFoundError):
            following.unlink()
        write_private_file(following, new_text)
        os.replace(following, self._path)
        self.reload()
        return verifier_key(self._name, self._key.public_key())
