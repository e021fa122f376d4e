"""Master keys (``ports.MasterKeys``): outside the database, so that a dump of it opens no
value. From ``LEDGER_MASTER_KEY`` (and ``LEDGER_NEW_MASTER_KEY`` for a rotation), or in
the embedded default a file ``master.key`` (mode 0600) in the data directory, generated
on first use.

A rotation in the embedded mode writes ``master.key.next`` first; while it exists both
files are loaded (running servers notice it within a heartbeat), so that a crash between
re-wrapping and renaming loses nothing.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from pathlib import Path

from pydantic import SecretStr

from secrets_ledger.core.settings import Settings
from secrets_ledger.domain import crypto
from secrets_ledger.domain.errors import InvalidRequest, Unavailable

MASTER_KEY_FILE = "master.key"
NEXT_MASTER_KEY_FILE = "master.key.next"


def write_key_file(path: Path, key: bytes) -> None:
    write_private_file(path, crypto.to_text(key))


def write_private_file(path: Path, text: str) -> None:
    """Creates the file with mode 0600 from the start (a key never sits world-readable)
    and whole: the text is written to a private file first, then linked into place, so
    that another process never reads a file that exists but is still empty. Raises
    FileExistsError if the file exists (another process won: use theirs)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
    _write_new(draft, text)
    try:
        os.link(draft, path)  # atomic, and fails if the file exists
    except FileExistsError:
        raise
    except OSError:
        # A filesystem without hard links: create the file in place (never replace one).
        _write_new(path, text)
    finally:
        draft.unlink()


def _write_new(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_key_file(path: Path) -> bytes:
    return crypto.decode_master_key(path.read_text("ascii"))


class MasterKeyring:
    """The master keys this process holds, by fingerprint. Which one wraps new tenant keys
    is the store's to say (the key in force), not this process's."""

    def __init__(self, data_dir: Path, env_key: str | None, env_new_key: str | None) -> None:
        self._data_dir = data_dir
        self._env_key = env_key
        self._env_new_key = env_new_key
        self._lock = threading.Lock()
        self._keys: dict[str, bytes] = {}
        self._primary = b""
        self._files_seen: tuple[object, ...] = ()
        self.reload()

    @classmethod
    def from_settings(cls, settings: Settings) -> MasterKeyring:
        def text(secret: SecretStr | None) -> str | None:
            return None if secret is None else secret.get_secret_value()

        return cls(settings.data_dir, text(settings.master_key), text(settings.new_master_key))

    @property
    def uses_env(self) -> bool:
        return self._env_key is not None

    @property
    def source(self) -> str:
        """Where the operator configures the master key (for messages)."""
        return "LEDGER_MASTER_KEY" if self.uses_env else str(self._data_dir / MASTER_KEY_FILE)

    def primary(self) -> bytes:
        """The key configured as the master key (``LEDGER_MASTER_KEY``, or ``master.key``),
        not the incoming one."""
        return self._primary

    def held(self) -> dict[str, bytes]:
        """Every master key this process holds, by fingerprint: one snapshot."""
        return dict(self._keys)

    def _files_signature(self) -> tuple[object, ...]:
        def signature(name: str) -> object:
            try:
                found = (self._data_dir / name).stat()
            except FileNotFoundError:
                return None
            return (found.st_ino, found.st_mtime_ns, found.st_size)

        return (signature(MASTER_KEY_FILE), signature(NEXT_MASTER_KEY_FILE))

    def refresh(self) -> None:
        """Embedded mode: loads the key files again if a rotation changed them (a running
        server sees a rotation's next key within a heartbeat)."""
        if not self.uses_env and self._files_signature() != self._files_seen:
            self.reload()

    def reload(self) -> None:
        with self._lock:
            keys: list[bytes] = []
            if self._env_key is not None:
                keys.append(crypto.decode_master_key(self._env_key))
                if self._env_new_key is not None:
                    keys.append(crypto.decode_master_key(self._env_new_key))
            else:
                path = self._data_dir / MASTER_KEY_FILE
                if not path.exists():
                    # Another process may generate it first: then use theirs.
                    with contextlib.suppress(FileExistsError):
                        write_key_file(path, crypto.generate_key())
                self._files_seen = self._files_signature()
                keys.append(read_key_file(path))
                following = self._data_dir / NEXT_MASTER_KEY_FILE
                with contextlib.suppress(FileNotFoundError):  # a rotation just finished
                    keys.append(read_key_file(following))
            self._primary = keys[0]
            self._keys = {crypto.key_fingerprint(key): key for key in keys}

    def by_fingerprint(self, fingerprint: str) -> bytes:
        key = self._keys.get(fingerprint)
        if key is None:
            self.refresh()  # a rotation may have begun since the last heartbeat
            key = self._keys.get(fingerprint)
        if key is None:
            # Not a destroyed key: a configuration error, and it must not read as one.
            raise Unavailable("the master key that wrapped a tenant key is not configured")
        return key

    def begin_rotation(self) -> bytes:
        """The next master key: ``LEDGER_NEW_MASTER_KEY``, or (embedded mode) the key in
        ``master.key.next``, made now unless an interrupted rotation left it."""
        if self.uses_env:
            if self._env_new_key is None:
                raise InvalidRequest("set LEDGER_NEW_MASTER_KEY to the new master key")
            return crypto.decode_master_key(self._env_new_key)
        following = self._data_dir / NEXT_MASTER_KEY_FILE
        if not following.exists():
            with contextlib.suppress(FileExistsError):  # another rotation began: join it
                write_key_file(following, crypto.generate_key())
        self.reload()
        return read_key_file(following)

    def finish_rotation(self) -> None:
        """Embedded mode: the next key file replaces the old one, whose key is retired (in
        the environment mode the operator swaps the variables). Idempotent."""
        following = self._data_dir / NEXT_MASTER_KEY_FILE
        if not self.uses_env and following.exists():
            os.replace(following, self._data_dir / MASTER_KEY_FILE)
            self.reload()
