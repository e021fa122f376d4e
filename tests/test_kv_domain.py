"""Vault KV v2 in the tenant aggregate, no storage: mounts, check-and-set, max_versions,
per-version soft delete, and key incarnations, each a behaviour of Vault's that the
hvac suite does not pin down alone."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from secrets_ledger.domain import kv, mounts
from secrets_ledger.domain.changes import RequestContext, SealedValue
from secrets_ledger.domain.errors import InvalidRequest, SecretNotFound
from secrets_ledger.domain.managed_events import ManagedVersionsDestroyed
from secrets_ledger.domain.tenant import Tenant

AT = datetime(2024, 1, 1, tzinfo=UTC)
CTX = RequestContext("tok", "req")


def seal(key: str, version: int, key_version: int) -> SealedValue:
    return SealedValue(f"ct:{key}:{version}", f"dek:{key}:{version}")


@pytest.fixture
def tenant() -> Tenant:
    opened = Tenant.open("acme", CTX, AT)
    mounts.enable(opened, "kv", "kv", {"version": "2"}, "m1", CTX, AT)
    return opened


def mount(tenant: Tenant) -> Any:
    return tenant.mounts["kv"]


def write(tenant: Tenant, path: str = "app", cas: int | None = None) -> int:
    version, _ = kv.write(tenant, mount(tenant), path, cas, seal, CTX, AT)
    return version


def test_versions_count_from_one_in_each_incarnation(tenant: Tenant) -> None:
    assert [write(tenant), write(tenant)] == [1, 2]
    kv.purge(tenant, mount(tenant), "app", CTX, AT)
    assert write(tenant) == 1
    assert tenant.secrets["kv:m1:app"]["latest"] == 3  # the ledger's numbering goes on


def test_cas_zero_means_never_written_in_this_incarnation(tenant: Tenant) -> None:
    assert write(tenant, cas=0) == 1
    kv.delete_versions(tenant, mount(tenant), "app", [1], CTX, AT)
    with pytest.raises(InvalidRequest, match="did not match"):
        write(tenant, cas=0)  # soft-deleted is still written (Vault fails it too)
    kv.purge(tenant, mount(tenant), "app", CTX, AT)
    assert write(tenant, cas=0) == 1


def test_cas_names_the_current_version(tenant: Tenant) -> None:
    write(tenant)
    with pytest.raises(InvalidRequest, match="did not match"):
        write(tenant, cas=2)
    assert write(tenant, cas=1) == 2


def test_cas_required_refuses_a_write_without_cas(tenant: Tenant) -> None:
    mounts.configure(tenant, "kv", {"cas_required": True}, CTX, AT)
    with pytest.raises(InvalidRequest, match="check-and-set parameter required"):
        write(tenant)
    assert write(tenant, cas=0) == 1


def test_max_versions_destroys_the_oldest_in_the_same_save(tenant: Tenant) -> None:
    kv.set_settings(tenant, mount(tenant), "app", {"max_versions": 2}, CTX, AT)
    for _ in range(3):
        version, destroyed = kv.write(tenant, mount(tenant), "app", None, seal, CTX, AT)
    assert (version, destroyed) == (3, [1])
    events = list(tenant.pending_events)
    assert isinstance(events[-1], ManagedVersionsDestroyed)
    assert events[-1].versions == [1]
    assert tenant.secrets["kv:m1:app"]["destroyed"] == [1]


def test_unknown_versions_are_ignored_and_deletes_undo(tenant: Tenant) -> None:
    write(tenant)
    write(tenant)
    before = len(tenant.pending_events)
    kv.delete_versions(tenant, mount(tenant), "app", [7, 9], CTX, AT)
    assert len(tenant.pending_events) == before  # nothing to record
    kv.delete_versions(tenant, mount(tenant), "app", [1, 2], CTX, AT)
    assert tenant.managed["kv:m1:app"]["deleted"] == [1, 2]
    kv.undelete_versions(tenant, mount(tenant), "app", [2, 5], CTX, AT)
    assert tenant.managed["kv:m1:app"]["deleted"] == [1]


def test_a_destroyed_version_is_no_longer_deleted(tenant: Tenant) -> None:
    write(tenant)
    kv.delete_versions(tenant, mount(tenant), "app", [1], CTX, AT)
    key, destroyed = kv.destroy_versions(tenant, mount(tenant), "app", [1], CTX, AT)
    assert (key, destroyed) == ("kv:m1:app", [1])
    assert tenant.managed[key]["deleted"] == []
    assert kv.destroy_versions(tenant, mount(tenant), "app", [1], CTX, AT) == (key, [])


def test_disabling_a_mount_ends_its_keys_and_a_new_mount_starts_empty(tenant: Tenant) -> None:
    write(tenant, "a")
    write(tenant, "b")
    purged = mounts.disable(tenant, "kv", CTX, AT)
    assert purged == {"kv:m1:a": [1], "kv:m1:b": [1]}
    assert tenant.managed == {}
    with pytest.raises(SecretNotFound):
        mounts.check_mount(tenant, "kv")
    mounts.enable(tenant, "kv", "kv", {"version": "2"}, "m2", CTX, AT)
    assert write(tenant, "a") == 1
    assert "kv:m2:a" in tenant.managed


def test_a_path_in_use_cannot_be_mounted_again(tenant: Tenant) -> None:
    with pytest.raises(InvalidRequest, match="already in use"):
        mounts.enable(tenant, "kv", "kv", {"version": "2"}, "m9", CTX, AT)


def test_the_events_rebuild_the_same_state(tenant: Tenant) -> None:
    write(tenant)
    kv.set_settings(tenant, mount(tenant), "app", {"custom_metadata": {"a": "b"}}, CTX, AT)
    kv.delete_versions(tenant, mount(tenant), "app", [1], CTX, AT)
    mounts.configure(tenant, "kv", {"max_versions": 3}, CTX, AT)
    rebuilt = None
    for event in tenant.pending_events:
        rebuilt = event.mutate(rebuilt)
    assert rebuilt is not None
    assert (rebuilt.mounts, rebuilt.managed, rebuilt.secrets) == (
        tenant.mounts, tenant.managed, tenant.secrets)
