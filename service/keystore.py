"""Envelope encryption's key store: master keys outside the database, wrapped keys inside.

master key (env or a 0600 file in the data directory, never in the database)
  └─ wraps tenant keys (table tenant_keys, one per tenant key version)
       └─ wrap data keys (table data_keys, one per secret version)
            └─ seal values (in events, bound to tenant, key and version)

Deleting rows here is crypto-shredding: the events keep their ciphertext, but nothing
can open it any more.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from secrets_ledger.domain import crypto
from secrets_ledger.domain.errors import CannotOpen, Unavailable
from secrets_ledger.service.clock import format_time, utc_now
from secrets_ledger.service.database import Database, fetch_one

MASTER_KEY_FILE = "master.key"
NEXT_MASTER_KEY_FILE = "master.key.next"


def write_key_file(path: Path, key: bytes) -> None:
    """Creates the file with mode 0600 from the start (the key never sits world-readable)
    and whole: the key is written to a private file first, then linked into place, so
    that another process never reads a file that exists but is still empty. Raises
    FileExistsError if the file exists (another process won: use theirs)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
    _write_new(draft, key)
    try:
        os.link(draft, path)  # atomic, and fails if the file exists
    except FileExistsError:
        raise
    except OSError:
        # A filesystem without hard links: create the file in place (never replace one).
        _write_new(path, key)
    finally:
        draft.unlink()


def _write_new(path: Path, key: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(crypto.to_text(key) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def read_key_file(path: Path) -> bytes:
    return crypto.decode_master_key(path.read_text("ascii"))


class MasterKeyring:
    """The master keys this process can use, by fingerprint; new wraps use ``current``.

    In the embedded mode the key lives in ``<data dir>/master.key`` and is generated on
    first use. A rotation in progress leaves ``master.key.next`` beside it; both are
    loaded, so that a crash between re-wrapping and renaming loses nothing.
    """

    def __init__(self, data_dir: Path, env_key: str | None, env_new_key: str | None) -> None:
        self._data_dir = data_dir
        self._env_key = env_key
        self._env_new_key = env_new_key
        self._lock = threading.Lock()
        self._keys: dict[str, bytes] = {}
        self._current = b""
        self._saw_next = False
        self.reload()

    @property
    def uses_env(self) -> bool:
        return self._env_key is not None

    @property
    def current(self) -> bytes:
        """The key new wraps use: the incoming one as soon as a rotation has begun."""
        if not self.uses_env and (self._data_dir / NEXT_MASTER_KEY_FILE).exists() != self._saw_next:
            self.reload()
        return self._current

    def reload(self) -> None:
        with self._lock:
            keys: list[bytes] = []
            if self._env_key is not None:
                keys.append(crypto.decode_master_key(self._env_key))
                if self._env_new_key is not None:
                    keys.insert(0, crypto.decode_master_key(self._env_new_key))
            else:
                path = self._data_dir / MASTER_KEY_FILE
                if not path.exists():
                    # Another process may generate it first: then use theirs.
                    with contextlib.suppress(FileExistsError):
                        write_key_file(path, crypto.generate_key())
                keys.append(read_key_file(path))
                following = self._data_dir / NEXT_MASTER_KEY_FILE
                self._saw_next = following.exists()
                if self._saw_next:
                    keys.insert(0, read_key_file(following))
            self._current = keys[0]
            self._keys = {crypto.key_fingerprint(key): key for key in keys}

    def by_fingerprint(self, fingerprint: str) -> bytes:
        key = self._keys.get(fingerprint)
        if key is None:
            self.reload()  # another process may have rotated the master key
            key = self._keys.get(fingerprint)
        if key is None:
            # Not a destroyed key: a configuration error, and it must not read as one.
            raise Unavailable("the master key that wrapped a tenant key is not configured")
        return key


@dataclass(frozen=True)
class NewDataKey:
    dek_id: str
    tenant_id: str
    key_version: int
    wrapped: str
    key: bytes


class KeyStore:
    def __init__(self, db: Database, master: MasterKeyring) -> None:
        self.db = db
        self.master = master
        # Unwrapped tenant keys for sealing new values. Safe to keep: a shredded tenant's
        # aggregate refuses writes, and reads always unwrap from the table.
        self._sealing_keys: dict[tuple[str, int], bytes] = {}

    # ---- tenant keys ------------------------------------------------------------------

    def create_tenant_key(self, tenant_id: str, key_version: int) -> None:
        """Creates the tenant key of that version unless a retried command already did."""
        key = crypto.generate_key()
        wrapped = crypto.seal(
            self.master.current, key, crypto.tenant_key_aad(tenant_id, key_version)
        )
        with self.db.transaction() as cur:
            cur.execute(
                "INSERT INTO tenant_keys (tenant_id, key_version, wrapped, master_key_id,"
                " created_at) VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (tenant_id, key_version, crypto.to_text(wrapped),
                 crypto.key_fingerprint(self.master.current), format_time(utc_now())),
            )

    def _tenant_key(self, tenant_id: str, key_version: int, wrapped: str,
                    master_key_id: str) -> bytes:
        master = self.master.by_fingerprint(master_key_id)
        return crypto.open_sealed(
            master, crypto.from_text(wrapped), crypto.tenant_key_aad(tenant_id, key_version)
        )

    def tenant_key(self, tenant_id: str, key_version: int) -> bytes:
        cached = self._sealing_keys.get((tenant_id, key_version))
        if cached is not None:
            return cached
        row = fetch_one(
            self.db,
            "SELECT wrapped, master_key_id FROM tenant_keys"
            " WHERE tenant_id = %s AND key_version = %s",
            (tenant_id, key_version),
        )
        if row is None:
            raise CannotOpen
        key = self._tenant_key(tenant_id, key_version, row[0], row[1])
        self._sealing_keys[(tenant_id, key_version)] = key
        return key

    # ---- data keys --------------------------------------------------------------------

    def new_data_key(self, tenant_id: str, key_version: int, tenant_key: bytes) -> NewDataKey:
        dek_id = str(uuid.uuid4())
        key = crypto.generate_key()
        wrapped = crypto.seal(tenant_key, key, crypto.data_key_aad(tenant_id, dek_id))
        return NewDataKey(dek_id, tenant_id, key_version, crypto.to_text(wrapped), key)

    def store_data_keys(self, keys: Iterable[NewDataKey]) -> None:
        rows = [(k.dek_id, k.tenant_id, k.key_version, k.wrapped) for k in keys]
        if not rows:
            return
        with self.db.transaction() as cur:
            cur.executemany(
                "INSERT INTO data_keys (dek_id, tenant_id, key_version, wrapped)"
                " VALUES (%s, %s, %s, %s)",
                rows,
            )

    def data_key(self, tenant_id: str, dek_id: str) -> bytes:
        """Unwraps a data key through its tenant key; CannotOpen if either was destroyed."""
        row = fetch_one(
            self.db,
            "SELECT d.wrapped, t.key_version, t.wrapped, t.master_key_id"
            " FROM data_keys d JOIN tenant_keys t"
            " ON t.tenant_id = d.tenant_id AND t.key_version = d.key_version"
            " WHERE d.dek_id = %s AND d.tenant_id = %s",
            (dek_id, tenant_id),
        )
        if row is None:
            raise CannotOpen
        return self.open_data_key(tenant_id, dek_id, row[0], row[1], row[2], row[3])

    def open_data_key(self, tenant_id: str, dek_id: str, wrapped: str | None,
                      key_version: int | None, tenant_wrapped: str | None,
                      master_key_id: str | None) -> bytes:
        """Unwraps a data key from its row and its tenant key's row, read by the caller in
        the statement that needed the key (None where a row was missing: destroyed)."""
        if wrapped is None or key_version is None or tenant_wrapped is None \
                or master_key_id is None:
            raise CannotOpen
        tenant_key = self._tenant_key(tenant_id, key_version, tenant_wrapped, master_key_id)
        return crypto.open_sealed(
            tenant_key, crypto.from_text(wrapped), crypto.data_key_aad(tenant_id, dek_id)
        )

    def destroy_data_keys(self, tenant_id: str, dek_ids: Iterable[str]) -> None:
        with self.db.transaction() as cur:
            cur.executemany(
                "DELETE FROM data_keys WHERE tenant_id = %s AND dek_id = %s",
                [(tenant_id, dek_id) for dek_id in dek_ids],
            )

    def shred_tenant(self, tenant_id: str) -> None:
        for slot in [slot for slot in self._sealing_keys if slot[0] == tenant_id]:
            del self._sealing_keys[slot]
        with self.db.transaction() as cur:
            cur.execute("DELETE FROM data_keys WHERE tenant_id = %s", (tenant_id,))
            cur.execute("DELETE FROM tenant_keys WHERE tenant_id = %s", (tenant_id,))

    # ---- master key rotation ----------------------------------------------------------

    def rewrap_tenant_keys(self, new_master: bytes) -> int:
        """Re-wraps, in one transaction, every tenant key not yet wrapped by ``new_master``."""
        new_id = crypto.key_fingerprint(new_master)
        with self.db.transaction() as cur:
            cur.execute(
                "SELECT tenant_id, key_version, wrapped, master_key_id FROM tenant_keys"
                " WHERE master_key_id <> %s",
                (new_id,),
            )
            rows = cur.fetchall()
            updates = []
            for tenant_id, key_version, wrapped, master_key_id in rows:
                key = self._tenant_key(tenant_id, key_version, wrapped, master_key_id)
                rewrapped = crypto.seal(
                    new_master, key, crypto.tenant_key_aad(tenant_id, key_version)
                )
                updates.append((crypto.to_text(rewrapped), new_id, tenant_id, key_version))
            cur.executemany(
                "UPDATE tenant_keys SET wrapped = %s, master_key_id = %s"
                " WHERE tenant_id = %s AND key_version = %s",
                updates,
            )
        return len(updates)
