"""Master key rotation: re-wrap every tenant key, touch no event.

Embedded mode: the new key is written to ``master.key.next`` first, the tenant keys are
re-wrapped in one transaction, then the file is renamed over ``master.key``. A crash at
any point leaves a key file that opens every wrapped key (both files are loaded).
With ``LEDGER_MASTER_KEY`` the new key comes from ``LEDGER_NEW_MASTER_KEY``.
"""

from __future__ import annotations

import os

from secrets_ledger.domain import crypto
from secrets_ledger.service.keystore import (
    MASTER_KEY_FILE,
    NEXT_MASTER_KEY_FILE,
    read_key_file,
    write_key_file,
)
from secrets_ledger.service.storage import Storage


class RotationRefused(Exception):
    pass


def rotate_master_key(storage: Storage) -> int:
    """Returns how many tenant keys were re-wrapped (a key re-wrapped twice counts twice)."""
    master = storage.keys.master
    settings = storage.settings
    if master.uses_env:
        if settings.new_master_key is None:
            raise RotationRefused("set LEDGER_NEW_MASTER_KEY to the new master key")
        new_key = crypto.decode_master_key(settings.new_master_key.get_secret_value())
        master.reload()
        return storage.keys.rewrap_tenant_keys(new_key)
    following = settings.data_dir / NEXT_MASTER_KEY_FILE
    if following.exists():
        new_key = read_key_file(following)  # resume a rotation that was interrupted
    else:
        new_key = crypto.generate_key()
        write_key_file(following, new_key)
    master.reload()
    count = storage.keys.rewrap_tenant_keys(new_key)
    # A second pass catches a tenant key another process wrapped with the old master key
    # just before it noticed the rotation; we still hold the old key to open it.
    count += storage.keys.rewrap_tenant_keys(new_key)
    os.replace(following, settings.data_dir / MASTER_KEY_FILE)
    master.reload()
    return count
