"""The events of managed secrets (``domain.managed``): each one past tense, applied to
the tenant aggregate's ``managed`` state (and to the key's versions where it writes or
destroys them)."""

from __future__ import annotations

from typing import Any

from secrets_ledger.domain.tenant import Tenant
from secrets_ledger.domain.times import format_time


class ManagedSecretCreated(Tenant.Event):
    key: str
    space: str
    name: str
    suffix: str
    base: int
    description: str | None
    kms_key_id: str | None
    tags: list[list[str]] | None

    def apply_to(self, tenant: Tenant) -> None:
        tenant.managed[self.key] = {
            "space": self.space, "name": self.name, "suffix": self.suffix, "base": self.base,
            "created_at": format_time(self.timestamp), "description": self.description,
            "kms_key_id": self.kms_key_id, "tags": self.tags, "ids": {}, "labels": {},
            "deleted": [], "settings": {},
            "deleted_at": None, "purge_after": None}


class ManagedVersionWritten(Tenant.Event):
    """A version written, with the labels as they stand after it (the write's moves)."""

    key: str
    write: dict[str, Any]  # version, ciphertext, dek_id, key_version, client_id
    labels: dict[str, int]

    def apply_to(self, tenant: Tenant) -> None:
        version = self.write["version"]
        state = tenant.secrets.setdefault(
            self.key, {"latest": 0, "deleted": False, "destroyed": []})
        state["latest"] = version
        managed = tenant.managed[self.key]
        managed["ids"][self.write["client_id"]] = version
        managed["labels"] = dict(self.labels)
        _forget_old_ids(managed["ids"], managed["labels"])


TRACKED_VERSION_IDS = 100
"""Client version ids the aggregate remembers (besides those of labelled versions): as
AWS keeps at most about 100 versions, an id stays in use for the last 100 versions of an
incarnation, and the aggregate's memory and snapshots stay bounded however many versions
a secret has (the views keep every id, for the history)."""


def _forget_old_ids(ids: dict[str, int], labels: dict[str, int]) -> None:
    if len(ids) <= TRACKED_VERSION_IDS:
        return
    labelled = set(labels.values())
    for client_id, version in list(ids.items()):  # oldest first
        if len(ids) <= TRACKED_VERSION_IDS:
            return
        if version not in labelled:
            del ids[client_id]


class ManagedSecretUpdated(Tenant.Event):
    """Secret-level metadata as it stands after the change."""

    key: str
    description: str | None
    kms_key_id: str | None
    tags: list[list[str]] | None

    def apply_to(self, tenant: Tenant) -> None:
        managed = tenant.managed[self.key]
        managed["description"] = self.description
        managed["kms_key_id"] = self.kms_key_id
        managed["tags"] = self.tags


class ManagedLabelsMoved(Tenant.Event):
    key: str
    labels: dict[str, int]

    def apply_to(self, tenant: Tenant) -> None:
        tenant.managed[self.key]["labels"] = dict(self.labels)


class ManagedDeletionScheduled(Tenant.Event):
    key: str
    current: int | None  # the current version then (None: the secret has no value)
    purge_after: str

    def apply_to(self, tenant: Tenant) -> None:
        managed = tenant.managed[self.key]
        managed["deleted_at"] = format_time(self.timestamp)
        managed["purge_after"] = self.purge_after


class ManagedSecretRestored(Tenant.Event):
    key: str
    current: int | None

    def apply_to(self, tenant: Tenant) -> None:
        managed = tenant.managed[self.key]
        managed["deleted_at"] = managed["purge_after"] = None


class ManagedSecretPurged(Tenant.Event):
    """The incarnation ends: its versions are destroyed and its name is free."""

    key: str
    current: int | None
    versions: list[int]

    def apply_to(self, tenant: Tenant) -> None:
        # The key's versions so far all belong to ended incarnations: the next one starts
        # above them (its ``base``), so nothing else needs remembering here.
        del tenant.managed[self.key]


class ManagedVersionsDeleted(Tenant.Event):
    """Versions soft-deleted one by one (recoverable: their data keys stay)."""

    key: str
    versions: list[int]

    def apply_to(self, tenant: Tenant) -> None:
        managed = tenant.managed[self.key]
        managed["deleted"] = sorted({*managed["deleted"], *self.versions})


class ManagedVersionsUndeleted(Tenant.Event):
    key: str
    versions: list[int]

    def apply_to(self, tenant: Tenant) -> None:
        managed = tenant.managed[self.key]
        managed["deleted"] = [v for v in managed["deleted"] if v not in self.versions]


class ManagedVersionsDestroyed(Tenant.Event):
    """Versions destroyed (their data keys deleted with the save); the events stay."""

    key: str
    versions: list[int]

    def apply_to(self, tenant: Tenant) -> None:
        state = tenant.secrets[self.key]
        state["destroyed"] = sorted({*state["destroyed"], *self.versions})
        managed = tenant.managed[self.key]
        managed["deleted"] = [v for v in managed["deleted"] if v not in self.versions]


class ManagedSettingsChanged(Tenant.Event):
    """A secret's front-end settings as they stand after the change."""

    key: str
    settings: dict[str, Any]

    def apply_to(self, tenant: Tenant) -> None:
        tenant.managed[self.key]["settings"] = dict(self.settings)
