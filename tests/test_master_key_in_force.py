"""The master key in force, on both backends: the store's check value, set on the first
start (also for a store made before it existed), and the lock that keeps a rotation and a
new tenant key from missing each other."""

from __future__ import annotations

import base64
import os
import threading

import pytest
from pydantic import SecretStr

from secrets_ledger.adapters.backend import Storage
from secrets_ledger.core.ports import TenantKeyRow
from secrets_ledger.core.settings import Settings
from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.domain.crypto import key_fingerprint
from secrets_ledger.domain.errors import Unavailable
from secrets_ledger.runtime import LedgerRuntime
from tests.support import blocking


def with_key(settings: Settings, key: bytes) -> Settings:
    return settings.model_copy(update={"master_key": SecretStr(base64.b64encode(key).decode())})


def forget_the_check_value(storage: Storage) -> None:
    """As a store made before the check value existed."""
    with storage.db.transaction() as cur:
        cur.execute("DELETE FROM master_key_in_force")


def test_the_first_start_puts_the_configured_key_in_force(settings: Settings) -> None:
    key = os.urandom(32)
    with LedgerRuntime(with_key(settings, key), follow=False) as runtime:
        assert runtime.storage.key_rows.master_key_in_force() == key_fingerprint(key)


def test_an_older_store_gets_the_key_that_wraps_its_tenant_keys(
        settings: Settings, ctx: RequestContext) -> None:
    key = os.urandom(32)
    with LedgerRuntime(with_key(settings, key)) as runtime:
        blocking(runtime).open_tenant("acme", ctx)
        forget_the_check_value(runtime.storage)
    with LedgerRuntime(with_key(settings, key), follow=False) as runtime:
        assert runtime.storage.key_rows.master_key_in_force() == key_fingerprint(key)


def test_an_older_store_refuses_a_key_that_opens_none_of_its_tenant_keys(
        settings: Settings, ctx: RequestContext) -> None:
    with LedgerRuntime(with_key(settings, os.urandom(32))) as runtime:
        blocking(runtime).open_tenant("acme", ctx)
        forget_the_check_value(runtime.storage)
    with pytest.raises(Unavailable, match="opens none of this ledger's 1 tenant keys"):
        LedgerRuntime(with_key(settings, os.urandom(32)), follow=False)


def test_a_tenant_key_made_during_a_switch_waits_and_is_wrapped_under_the_new_key(
        runtime: LedgerRuntime) -> None:
    rows = runtime.storage.key_rows
    old = rows.master_key_in_force()
    assert old is not None
    rows.insert_tenant_key("before", 1, {old: "under-old"}, "now")
    switching, release = threading.Event(), threading.Event()

    def slow_rewrap(row: TenantKeyRow) -> str:
        switching.set()
        assert release.wait(10)
        return "rewrapped"

    switch = threading.Thread(target=rows.switch_master_key,
                              args=("new", slow_rewrap, lambda *wrapped: "unused"))
    switch.start()
    assert switching.wait(10)
    insert = threading.Thread(target=rows.insert_tenant_key,
                              args=("during", 1, {old: "under-old", "new": "under-new"}, "now"))
    insert.start()
    insert.join(0.5)
    assert insert.is_alive()  # held back by the switch's lock
    release.set()
    switch.join(10)
    insert.join(10)
    assert rows.tenant_key("during", 1) == TenantKeyRow("during", 1, "under-new", "new")
    assert rows.tenant_key("before", 1) == TenantKeyRow("before", 1, "rewrapped", "new")
