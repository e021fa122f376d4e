"""A managed secret's write repeated with its client version id (AWS's
ClientRequestToken): the stored version is opened and compared with the value sent
(never returned). The same value is the first write repeated: its result, nothing
written. Another value, or a version destroyed since, is a conflict."""

from __future__ import annotations

import hmac

from secrets_ledger.core.door import Door
from secrets_ledger.core.managed_values import SecretRef, Written, labels_of, live_row, resolve
from secrets_ledger.domain.errors import SecretNotFound, VersionIdInUse
from secrets_ledger.domain.times import utc_now


async def repeated_write(door: Door, tenant: str, space: str, ref: SecretRef, client_id: str,
                         plaintext: bytes | None) -> Written:
    """The first write's result if this repeats it (same client id, same value); else
    VersionIdInUse."""
    return await door.in_thread(_compare, door, tenant, space, ref, client_id, plaintext)


def _compare(door: Door, tenant: str, space: str, ref: SecretRef, client_id: str,
         plaintext: bytes | None) -> Written:
    """The first write's result if this repeats it (same client id, same value)."""
    tenant_id, _ = door.tenant_row(tenant)
    rows = door.views.managed_secrets(tenant_id, space, ref.candidates())
    row = resolve(ref, [r for r in rows if live_row(r, utc_now())])
    if row is None:
        raise SecretNotFound("no such secret")
    version = next((v.version for v in row.versions if v.client_id == client_id), None)
    stored = (None if version is None
              else door.views.version_row(tenant_id, row.key, version))
    same = False
    if plaintext is not None and version is not None and stored is not None:
        ciphertext, dek_id, _ = stored
        if ciphertext is not None and dek_id is not None:
            opened = door.envelope.open_value(tenant_id, row.key, version,
                                                   ciphertext, dek_id)
            same = hmac.compare_digest(opened, plaintext)
    if not same or version is None:
        raise VersionIdInUse("that client version id is in use", name=row.name,
                             suffix=row.suffix, client_id=client_id)
    return Written(row.name, row.suffix, client_id, labels_of(row.labels, version))
