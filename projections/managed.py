"""The managed secrets' rows of the current view (``domain.managed``): each secret's
metadata and labels, and the client id of each version; their versions' ciphertext and
the key's current version (the one labelled ``AWSCURRENT``) go to the same tables as
native keys', so one read path serves both.

Part of ``CurrentSecretsView``, so that a read of a secret's metadata waits for the same
tracking position as a read of its value (read-your-writes across both).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from secrets_ledger.domain import managed, managed_events
from secrets_ledger.projections.ports import Column, ViewWriter

Slot = tuple[str, str]  # (tenant id, key)

MANAGED_TABLES = ("managed_secrets", "managed_versions")
MANAGED_ORDER = {"managed_secrets": "tenant_id, key",
                 "managed_versions": "tenant_id, key, version"}

_SECRET_COLUMNS: list[Column] = [
    ("tenant_id", "text"), ("key", "text"), ("space", "text"), ("name", "text"),
    ("suffix", "text"), ("base", "integer"), ("created_at", "text"), ("changed_at", "text"),
    ("description", "text"), ("kms_key_id", "text"), ("tags", "text"), ("labels", "text"),
    ("deleted_at", "text"), ("purge_after", "text"), ("settings", "text")]
_SECRET_INDEX = {name: n for n, (name, _) in enumerate(_SECRET_COLUMNS)}
_VERSION_COLUMNS: list[Column] = [
    ("tenant_id", "text"), ("key", "text"), ("version", "integer"), ("client_id", "text"),
    ("created_at", "text"), ("deleted_at", "text")]
VersionSlot = tuple[str, str, int]


@dataclass
class ManagedRows:
    """One batch's managed rows: secrets created (whole rows), changes to secrets
    created before the batch, purges, and versions."""

    created: dict[Slot, list[Any]] = field(default_factory=dict)
    changed: dict[Slot, dict[str, Any]] = field(default_factory=dict)
    purged: dict[Slot, None] = field(default_factory=dict)
    versions: dict[VersionSlot, list[Any]] = field(default_factory=dict)
    version_deletions: dict[VersionSlot, str | None] = field(default_factory=dict)

    def change(self, slot: Slot, **columns: Any) -> None:
        row = self.created.get(slot)
        if row is not None:
            for name, value in columns.items():
                row[_SECRET_INDEX[name]] = value
        else:
            self.changed.setdefault(slot, {}).update(columns)

    def version_deleted(self, slot: VersionSlot, at: str | None) -> None:
        row = self.versions.get(slot)
        if row is not None:
            row[5] = at
        else:
            self.version_deletions[slot] = at

    def purge(self, slot: Slot) -> None:
        self.created.pop(slot, None)
        self.changed.pop(slot, None)
        self.purged[slot] = None

    def write(self, tx: ViewWriter, t: dict[str, str]) -> None:
        secrets = t["managed_secrets"]
        for tenant_id, key in self.purged:
            tx.execute(f"DELETE FROM {secrets} WHERE tenant_id = %s AND key = %s",
                       (tenant_id, key))
        tx.append(secrets, _SECRET_COLUMNS, list(self.created.values()))
        for (tenant_id, key), columns in self.changed.items():
            names = sorted(columns)
            assignments = ", ".join(f"{name} = %s" for name in names)
            tx.execute(f"UPDATE {secrets} SET {assignments} WHERE tenant_id = %s AND key = %s",
                       (*[columns[name] for name in names], tenant_id, key))
        tx.append(t["managed_versions"], _VERSION_COLUMNS, list(self.versions.values()))
        tx.update(t["managed_versions"], assign=[("deleted_at", "text")],
                  keys=[("tenant_id", "text"), ("key", "text"), ("version", "integer")],
                  rows=[(at, *slot) for slot, at in self.version_deletions.items()])


def labels_text(labels: dict[str, int]) -> str:
    return json.dumps(labels)  # in the order attached: a version's labels keep it


def current_of(labels: dict[str, int]) -> int | None:
    return labels.get(managed.CURRENT)


ManagedGatherer = Callable[[ManagedRows, Any, str, str], None]
"""Adds one event's managed rows: (rows, event, tenant id, time as text)."""


def _created(rows: ManagedRows, event: Any, tenant_id: str, at: str) -> None:
    # A purge earlier in the batch stays: its DELETE runs before this row is inserted.
    rows.created[(tenant_id, event.key)] = [
        tenant_id, event.key, event.space, event.name, event.suffix, event.base, at, at,
        event.description, event.kms_key_id, json.dumps(event.tags), labels_text({}),
        None, None, json.dumps({})]


def _written(rows: ManagedRows, event: Any, tenant_id: str, at: str) -> None:
    write = event.write
    slot = (tenant_id, event.key, write["version"])
    rows.versions[slot] = [*slot, write["client_id"], at, None]
    rows.change((tenant_id, event.key), labels=labels_text(event.labels), changed_at=at)


def _updated(rows: ManagedRows, event: Any, tenant_id: str, at: str) -> None:
    rows.change((tenant_id, event.key), description=event.description,
                kms_key_id=event.kms_key_id, tags=json.dumps(event.tags), changed_at=at)


def _labels_moved(rows: ManagedRows, event: Any, tenant_id: str, at: str) -> None:
    rows.change((tenant_id, event.key), labels=labels_text(event.labels), changed_at=at)


def _deletion_scheduled(rows: ManagedRows, event: Any, tenant_id: str, at: str) -> None:
    rows.change((tenant_id, event.key), deleted_at=at, purge_after=event.purge_after)


def _restored(rows: ManagedRows, event: Any, tenant_id: str, at: str) -> None:
    rows.change((tenant_id, event.key), deleted_at=None, purge_after=None, changed_at=at)


def _purged(rows: ManagedRows, event: Any, tenant_id: str, at: str) -> None:
    rows.purge((tenant_id, event.key))


def _versions_deleted(rows: ManagedRows, event: Any, tenant_id: str, at: str) -> None:
    for version in event.versions:
        rows.version_deleted((tenant_id, event.key, version), at)


def _versions_undeleted_or_destroyed(rows: ManagedRows, event: Any, tenant_id: str,
                                     at: str) -> None:
    for version in event.versions:  # a destroyed version is no longer "deleted"
        rows.version_deleted((tenant_id, event.key, version), None)


def _settings_changed(rows: ManagedRows, event: Any, tenant_id: str, at: str) -> None:
    rows.change((tenant_id, event.key), settings=json.dumps(event.settings), changed_at=at)


MANAGED_GATHERERS: dict[type[Any], ManagedGatherer] = {
    managed_events.ManagedSecretCreated: _created,
    managed_events.ManagedVersionWritten: _written,
    managed_events.ManagedSecretUpdated: _updated,
    managed_events.ManagedLabelsMoved: _labels_moved,
    managed_events.ManagedDeletionScheduled: _deletion_scheduled,
    managed_events.ManagedSecretRestored: _restored,
    managed_events.ManagedSecretPurged: _purged,
    managed_events.ManagedVersionsDeleted: _versions_deleted,
    managed_events.ManagedVersionsUndeleted: _versions_undeleted_or_destroyed,
    managed_events.ManagedVersionsDestroyed: _versions_undeleted_or_destroyed,
    managed_events.ManagedSettingsChanged: _settings_changed,
}
