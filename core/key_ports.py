"""The key store's ports: tenant keys wrapped under the master key in force, data keys
wrapped under tenant keys, the master keys a process holds, and the servers that hold
them (a master-key rotation waits for each). Re-exported by ``core.ports``."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol


class TenantKeyRow(NamedTuple):
    tenant_id: str
    key_version: int
    wrapped: str  # base64 of the tenant key sealed by a master key
    master_key_id: str  # the fingerprint of that master key


class KeyRows(Protocol):
    """The mutable key store: deleting its rows is what crypto-shreds values."""

    def insert_tenant_key(self, tenant_id: str, key_version: int, wraps: Mapping[str, str],
                          created_at: str) -> None:
        """Inserts the tenant key (unless a retried command did) wrapped under the master
        key in force at commit; ``wraps``: its wrap under each master key held."""

    def tenant_key(self, tenant_id: str, key_version: int) -> TenantKeyRow | None: ...

    def data_key(self, tenant_id: str, dek_id: str) -> tuple[str, TenantKeyRow] | None:
        """A data key's wrapped form and the row of the tenant key that wraps it."""

    def destroy_data_keys(self, tenant_id: str, dek_ids: Sequence[str]) -> None: ...

    def shred_tenant(self, tenant_id: str) -> None:
        """Deletes every tenant key and data key of the tenant."""

    def erase_deleted(self) -> None:
        """Returns once no key deleted so far can be read from the database's files by
        any path (stale pages, WAL frames, dead tuples)."""

    def master_key_in_force(self) -> str | None:
        """The id of the master key that wraps new tenant keys (the store's check value)."""

    def switch_master_key(self, new_key_id: str, rewrap: Callable[[TenantKeyRow], str],
                          rewrap_signing: Callable[[str, str, str], str]
                          ) -> MasterKeySwitch:
        """In one transaction (new tenant keys wait): re-wraps every tenant key and every
        token's AWS signing key ((token id, wrapped, master key id) -> wrapped) not under
        ``new_key_id``, puts that key in force, retires the one before. Unavailable, and
        nothing changed, while a live server does not hold the new key."""

    def store_signing_key(self, token_id: str, wraps: Mapping[str, str]) -> None:
        """Stores a token's AWS signing key wrapped under the master key in force when the
        row commits (``wraps``: by master key id, under every key held)."""


class MasterKeySwitch(NamedTuple):
    rewrapped: int
    in_force: str
    retired: str | None  # None when the new key was in force already


class MasterKeys(Protocol):
    """The master keys this process holds (from the environment or a 0600 file)."""

    def primary(self) -> bytes:
        """The key configured as the master key (not the incoming one of a rotation)."""

    def held(self) -> Mapping[str, bytes]:
        """Every key held, by fingerprint."""

    def by_fingerprint(self, fingerprint: str) -> bytes:
        """The key with this fingerprint; Unavailable when it is not configured."""

    def begin_rotation(self) -> bytes:
        """The next master key (made or read where it is kept)."""

    def finish_rotation(self) -> None:
        """Once the next key is in force: the only one, where the keys are files."""

    def refresh(self) -> None:
        """Loads the keys again where a rotation changed them."""


class LiveProcesses(Protocol):
    """The running servers and the master keys each holds."""

    def lacking(self, key_id: str) -> list[str]:
        """The other live servers that do not hold the master key ``key_id``."""


@dataclass(frozen=True)
class WrappedDataKey:
    """A new data key as stored: wrapped by its tenant key (``key`` is the unwrapped key,
    kept only in memory to seal the value it was made for)."""

    dek_id: str
    tenant_id: str
    key_version: int
    wrapped: str
    key: bytes

    def __repr__(self) -> str:  # never key material in a log line
        return f"WrappedDataKey({self.dek_id!r})"
