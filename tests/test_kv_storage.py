"""Vault KV v2 through the core, on both backends: values in no stored byte, reads
recorded, and the views (mounts, versions, settings) rebuilt by replay to the same
checksum after mounts came and went."""

from __future__ import annotations

import uuid

from secrets_ledger.core.principals import Principal
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.core.settings import Settings
from secrets_ledger.projections.checksum import views_checksum
from secrets_ledger.projections.replay import replay
from secrets_ledger.projections.views import ALL_VIEWS, views_named
from secrets_ledger.runtime import LedgerRuntime
from tests.support import Blocking, run
from tests.test_encryption import assert_stored_nowhere, new_marker

WHO = Principal.operator("tok_test")


def request() -> RequestInfo:
    return RequestInfo(f"req-{uuid.uuid4().hex[:8]}")


def test_kv_values_are_in_no_stored_byte_and_reads_are_recorded(
        runtime: LedgerRuntime, ledger: Blocking, tenant: str, settings: Settings) -> None:
    secret = new_marker()
    kv = runtime.ledger.kv
    run(kv.enable_mount(WHO, "acme", "secret", "kv", {}, request()))
    run(kv.write(WHO, "acme", "secret", "app", {"password": secret}, None, request()))
    found, _ = run(runtime.ledger.kv_reads.read(WHO, "acme", "secret", "app", None,
                                                request()))
    assert found.data == {"password": secret}
    reads = [i for i in ledger.audit("acme", limit=1000).items if i.action == "read"]
    assert [(r.key.rsplit(":", 1)[1], r.version) for r in reads] == [("app", 1)]
    assert_stored_nowhere(settings, [secret.encode()])


def test_a_replay_rebuilds_the_kv_views(runtime: LedgerRuntime, ledger: Blocking,
                                        tenant: str) -> None:
    kv = runtime.ledger.kv
    run(kv.enable_mount(WHO, "acme", "secret", "kv", {}, request()))
    run(kv.enable_mount(WHO, "acme", "gone", "kv", {}, request()))
    run(kv.configure_mount(WHO, "acme", "secret", {"max_versions": 2}, request()))
    for n in range(3):
        run(kv.write(WHO, "acme", "secret", "app", {"n": n}, None, request()))
    run(kv.write(WHO, "acme", "gone", "x", {"n": 1}, None, request()))
    run(kv.delete_versions(WHO, "acme", "secret", "app", [3], request()))
    run(kv.set_metadata(WHO, "acme", "secret", "app", {"custom_metadata": {"a": "b"}},
                        request()))
    run(kv.disable_mount(WHO, "acme", "gone", request()))
    run(kv.enable_mount(WHO, "acme", "gone", "kv", {}, request()))
    storage = runtime.storage
    runtime.ledger.door.await_views()
    live = views_checksum(storage.view_store, ALL_VIEWS)
    assert replay(storage.view_store, storage.event_source, views_named("all")) == live
    mounts = run(runtime.ledger.kv_reads.mounts(WHO, "acme"))
    assert [m.path for m in mounts] == ["gone", "secret"]
    assert run(runtime.ledger.kv_reads.keys(WHO, "acme", "gone", "")) == []
    assert ledger.verify("acme").ok
