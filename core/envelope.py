"""Envelope encryption: master keys wrap tenant keys, tenant keys wrap data keys, a data
key seals one value.

    master key (environment or a 0600 file, never in the database)
      └─ wraps tenant keys (one per tenant key version)
           └─ wrap data keys (one per secret version)
                └─ seal values (in events, bound to tenant, key and version)

The wrapped keys live in the mutable key store (``ports.KeyRows``): deleting them is
crypto-shredding, and the events keep their ciphertext, which nothing can open any more.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from functools import partial

from secrets_ledger.core.ports import (
    KeyRows,
    MasterKeys,
    MasterKeySwitch,
    TenantKeyRow,
    WrappedDataKey,
)
from secrets_ledger.domain import crypto
from secrets_ledger.domain.changes import SealedValue
from secrets_ledger.domain.errors import CannotOpen, Unavailable, VersionDestroyed
from secrets_ledger.domain.times import format_time, utc_now
from secrets_ledger.verifier import value_commitment


class Envelope:
    def __init__(self, rows: KeyRows, master: MasterKeys) -> None:
        self.rows = rows
        self.master = master
        # Unwrapped tenant keys for sealing new values. Safe to keep: a shredded tenant's
        # aggregate refuses writes, and reads always unwrap from the rows.
        self._sealing_keys: dict[tuple[str, int], bytes] = {}

    # ---- tenant keys ------------------------------------------------------------------

    def create_tenant_key(self, tenant_id: str, key_version: int) -> None:
        """Creates the tenant key of that version unless a retried command already did.
        It is wrapped under every master key held (one snapshot of them); the store keeps
        the wrap under the key in force when the row commits, so that a rotation running
        at the same moment can neither miss the row nor find it under a retired key."""
        key = crypto.generate_key()
        aad = crypto.tenant_key_aad(tenant_id, key_version)
        wraps = {key_id: crypto.to_text(crypto.seal(master, key, aad))
                 for key_id, master in self.master.held().items()}
        self.rows.insert_tenant_key(tenant_id, key_version, wraps, format_time(utc_now()))

    def _open_tenant_key(self, row: TenantKeyRow) -> bytes:
        master = self.master.by_fingerprint(row.master_key_id)
        return crypto.open_sealed(master, crypto.from_text(row.wrapped),
                                  crypto.tenant_key_aad(row.tenant_id, row.key_version))

    def sealing_key(self, tenant_id: str, key_version: int) -> bytes:
        """The tenant key that wraps new data keys; CannotOpen if it is gone."""
        cached = self._sealing_keys.get((tenant_id, key_version))
        if cached is not None:
            return cached
        row = self.rows.tenant_key(tenant_id, key_version)
        if row is None:
            raise CannotOpen
        key = self._open_tenant_key(row)
        self._sealing_keys[(tenant_id, key_version)] = key
        return key

    def forget_tenant(self, tenant_id: str) -> None:
        for slot in [slot for slot in self._sealing_keys if slot[0] == tenant_id]:
            del self._sealing_keys[slot]

    # ---- data keys --------------------------------------------------------------------

    @staticmethod
    def new_data_key(tenant_id: str, key_version: int, tenant_key: bytes) -> WrappedDataKey:
        dek_id = str(uuid.uuid4())
        key = crypto.generate_key()
        wrapped = crypto.seal(tenant_key, key, crypto.data_key_aad(tenant_id, dek_id))
        return WrappedDataKey(dek_id, tenant_id, key_version, crypto.to_text(wrapped), key)

    def data_key(self, tenant_id: str, dek_id: str) -> bytes:
        """Unwraps a data key through its tenant key; CannotOpen if either was destroyed."""
        found = self.rows.data_key(tenant_id, dek_id)
        if found is None:
            raise CannotOpen
        wrapped, tenant_key = found
        return self.open_data_key(tenant_id, dek_id, wrapped, tenant_key)

    def open_data_key(self, tenant_id: str, dek_id: str, wrapped: str | None,
                      tenant_key: TenantKeyRow | None) -> bytes:
        """Unwraps a data key from rows its caller read (None where a row was missing)."""
        if wrapped is None or tenant_key is None:
            raise CannotOpen
        return crypto.open_sealed(self._open_tenant_key(tenant_key), crypto.from_text(wrapped),
                                  crypto.data_key_aad(tenant_id, dek_id))

    # ---- values -----------------------------------------------------------------------

    def open_value(self, tenant_id: str, key: str, version: int, sealed: str | None,
                   dek_id: str | None,
                   data_key_of: Callable[[str], bytes] | None = None) -> bytes:
        """The plaintext of one version; VersionDestroyed when it was destroyed or can no
        longer be opened (its data key, or its tenant's keys, are gone). ``data_key_of``
        unwraps the data key from rows the caller read already."""
        if sealed is None or dek_id is None:
            raise VersionDestroyed("that version was destroyed")
        try:
            data_key = (data_key_of or partial(self.data_key, tenant_id))(dek_id)
            return crypto.open_sealed(data_key, crypto.from_text(sealed),
                                      crypto.value_aad(tenant_id, key, version))
        except CannotOpen:
            raise VersionDestroyed("that version can no longer be opened") from None

    # ---- master key rotation ----------------------------------------------------------

    def switch_master_key(self, new_master: bytes) -> MasterKeySwitch:
        """Re-wraps every tenant key under ``new_master`` and puts that key in force."""
        def rewrap(row: TenantKeyRow) -> str:
            key = self._open_tenant_key(row)
            return crypto.to_text(crypto.seal(new_master, key, crypto.tenant_key_aad(
                row.tenant_id, row.key_version)))

        def rewrap_signing(token_id: str, wrapped: str, master_key_id: str) -> str:
            aad = crypto.signing_key_aad(token_id)
            secret = crypto.open_sealed(self.master.by_fingerprint(master_key_id),
                                        crypto.from_text(wrapped), aad)
            return crypto.to_text(crypto.seal(new_master, secret, aad))

        return self.rows.switch_master_key(crypto.key_fingerprint(new_master), rewrap,
                                           rewrap_signing)


class ValueSealer:
    """Seals each value of one command under a fresh data key wrapped by the tenant key in
    force; the new keys are saved with the command's event."""

    def __init__(self, envelope: Envelope, tenant_id: str,
                 plaintexts: Mapping[str, bytes]) -> None:
        self._envelope = envelope
        self._tenant_id = tenant_id
        self._plaintexts = plaintexts
        self.new_keys: list[WrappedDataKey] = []

    def __call__(self, key: str, version: int, key_version: int) -> SealedValue:
        try:
            tenant_key = self._envelope.sealing_key(self._tenant_id, key_version)
        except CannotOpen:
            raise Unavailable("the tenant key cannot be opened") from None
        data_key = self._envelope.new_data_key(self._tenant_id, key_version, tenant_key)
        self.new_keys.append(data_key)
        aad = crypto.value_aad(self._tenant_id, key, version)
        plaintext = self._plaintexts[key]
        sealed = crypto.seal(data_key.key, plaintext, aad)
        opening = crypto.commitment_opening(data_key.key, aad)
        return SealedValue(crypto.to_text(sealed), data_key.dek_id,
                           value_commitment(opening, plaintext))
