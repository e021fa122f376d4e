"""Managed secrets: a secret with a life above its key's versions, as AWS Secrets Manager
(and, later, Vault's KV metadata) knows it.

A managed secret lives in a *space* (``sm:<region>``) under a name; its ledger key is
``<space>:<name>``, which no native key can be (native keys have no ``:``), so façade
names never collide with native keys. On top of the key's versions it keeps:

- secret-level metadata: description, KMS key id, tags;
- the client's id of each version (AWS's ``ClientRequestToken``), unique within one
  incarnation, and staging labels (``AWSCURRENT``...), moved in the same event as the
  write that moves them; ``AWSCURRENT`` is the version a plain read returns;
- scheduled deletion (``purge_after``: gone once that time has passed, at read time,
  before any sweeper runs) and restoration;
- incarnations: purging destroys every version of the incarnation (crypto-shredding; the
  events stay and verify) and frees the name; a later create starts a new incarnation,
  whose versions continue the key's numbering above ``base``.

Commands are functions of the tenant aggregate: each checks, then records its events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from secrets_ledger.domain.changes import RequestContext, Sealer
from secrets_ledger.domain.errors import (
    InvalidRequest,
    SecretDeleted,
    SecretExists,
    SecretNotFound,
    VersionIdInUse,
)
from secrets_ledger.domain.managed_events import (
    ManagedDeletionScheduled,
    ManagedLabelsMoved,
    ManagedSecretCreated,
    ManagedSecretPurged,
    ManagedSecretRestored,
    ManagedSecretUpdated,
    ManagedVersionWritten,
)
from secrets_ledger.domain.managed_state import ManagedState
from secrets_ledger.domain.tenant import Tenant
from secrets_ledger.domain.times import format_time

CURRENT = "AWSCURRENT"
PREVIOUS = "AWSPREVIOUS"


def managed_key(space: str, name: str) -> str:
    return f"{space}:{name}"


@dataclass(frozen=True)
class SecretMetadata:
    description: str | None
    kms_key_id: str | None
    tags: list[list[str]] | None  # None: never tagged (AWS then shows no Tags at all)


@dataclass(frozen=True)
class NewVersion:
    """A version to write: its client id, and the labels it takes (moved from others)."""

    client_id: str
    labels: Sequence[str]


# ---- queries on the aggregate -----------------------------------------------------------


def live_secret(tenant: Tenant, key: str, at: datetime) -> ManagedState | None:
    """The secret under ``key``, unless there is none or its recovery window has passed."""
    state = tenant.managed.get(key)
    if state is None or _expired(state, at):
        return None
    return state


def _expired(state: ManagedState, at: datetime) -> bool:
    return state["purge_after"] is not None and state["purge_after"] <= format_time(at)


def check_secret(tenant: Tenant, key: str, at: datetime) -> ManagedState:
    tenant.check_not_shredded()
    state = live_secret(tenant, key, at)
    if state is None:
        raise SecretNotFound("no such secret")
    return state


def check_not_scheduled(state: ManagedState) -> None:
    if state["deleted_at"] is not None:
        raise SecretDeleted("the secret is scheduled for deletion")


def check_new_client_id(state: ManagedState, client_id: str) -> None:
    """A client id names one version of an incarnation: used again it is a repeat of
    that write (the caller compares the values) or a conflict, never a second version."""
    version = state["ids"].get(client_id)
    if version is not None:
        raise VersionIdInUse("that client version id is in use", version=version)


def unexpired_versions(tenant: Tenant, key: str, state: ManagedState) -> list[int]:
    """The versions of the incarnation not destroyed yet."""
    key_state = tenant.secrets.get(key)
    if key_state is None:
        return []
    return [v for v in range(state["base"] + 1, key_state["latest"] + 1)
            if v not in key_state["destroyed"]]


# ---- commands -------------------------------------------------------------------------


def create(tenant: Tenant, space: str, name: str, suffix: str, metadata: SecretMetadata,
           version: NewVersion | None, seal: Sealer, ctx: RequestContext,
           at: datetime) -> tuple[int | None, list[int]]:
    """Creates the secret (a new incarnation), with its first version if a value is
    given; returns that version, and the versions destroyed with the save: those of an
    incarnation whose recovery window has passed, purged in the same save."""
    tenant.check_not_shredded()
    key = managed_key(space, name)
    existing = tenant.managed.get(key)
    if existing is not None:
        if not _expired(existing, at):
            if version is not None:
                check_new_client_id(existing, version.client_id)
            raise SecretExists("a secret of that name exists", name=name)
        purged = purge(tenant, key, existing, ctx, at)
    else:
        purged = []
    key_state = tenant.secrets.get(key)
    base = key_state["latest"] if key_state is not None else 0
    tenant.record(ManagedSecretCreated, ctx, at, key=key, space=space, name=name,
                  suffix=suffix, base=base, description=metadata.description,
                  kms_key_id=metadata.kms_key_id, tags=metadata.tags)
    if version is None:
        return None, purged
    return write_version(tenant, key, version, seal, ctx, at), purged


def write_version(tenant: Tenant, key: str, version: NewVersion, seal: Sealer,
                  ctx: RequestContext, at: datetime) -> int:
    """Writes the next version and moves its labels to it in the same event. The first
    version of an incarnation is current whatever labels were asked for; a version
    made current hands ``AWSPREVIOUS`` to the one it replaces."""
    state = check_secret(tenant, key, at)
    check_new_client_id(state, version.client_id)
    key_state = tenant.secrets.get(key)
    number = (key_state["latest"] if key_state is not None else 0) + 1
    labels = dict(state["labels"])
    asked = list(dict.fromkeys(version.labels))
    if not state["ids"] and CURRENT not in asked:
        asked.append(CURRENT)
    if CURRENT in asked and CURRENT in labels:
        _attach(labels, PREVIOUS, labels[CURRENT])
    for label in asked:
        _attach(labels, label, number)
    if labels.get(PREVIOUS) == labels.get(CURRENT):  # asked for both: it is current
        del labels[PREVIOUS]
    sealed = seal(key, number, tenant.key_version)
    tenant.record(ManagedVersionWritten, ctx, at, key=key, labels=labels, write={
        "version": number, **sealed.fields(), "key_version": tenant.key_version,
        "client_id": version.client_id})
    return number


def update_metadata(tenant: Tenant, key: str, metadata: SecretMetadata,
                    ctx: RequestContext, at: datetime) -> None:
    state = check_secret(tenant, key, at)
    if (metadata.description, metadata.kms_key_id, metadata.tags) != (
            state["description"], state["kms_key_id"], state["tags"]):
        tenant.record(ManagedSecretUpdated, ctx, at, key=key,
                      description=metadata.description, kms_key_id=metadata.kms_key_id,
                      tags=metadata.tags)


def move_label(tenant: Tenant, key: str, label: str, to_version: int | None,
               from_version: int | None, ctx: RequestContext, at: datetime) -> None:
    """Moves ``label`` from ``from_version`` (where it must be) to ``to_version`` (both
    ledger versions of this incarnation; either may be None). Moving ``AWSCURRENT``
    hands ``AWSPREVIOUS`` to the version it leaves."""
    state = check_secret(tenant, key, at)
    labels = dict(state["labels"])
    if from_version is not None:
        if labels.get(label) != from_version:
            raise InvalidRequest("that label is not on that version", label=label)
        del labels[label]
    elif label in labels and labels[label] != to_version:
        raise InvalidRequest("that label is on another version", label=label,
                             version=labels[label])
    if label == CURRENT and from_version is not None and to_version is None:
        raise InvalidRequest("AWSCURRENT stays on a version: move it (MoveToVersionId)")
    if label == PREVIOUS and to_version is not None and to_version == labels.get(CURRENT):
        raise InvalidRequest("AWSPREVIOUS cannot be on the current version")
    if to_version is not None:
        _attach(labels, label, to_version)
    if label == CURRENT and from_version is not None and from_version != to_version:
        _attach(labels, PREVIOUS, from_version)
    if label == CURRENT and to_version is not None and labels.get(PREVIOUS) == to_version:
        del labels[PREVIOUS]
    if labels != state["labels"]:
        tenant.record(ManagedLabelsMoved, ctx, at, key=key, labels=labels)


def _attach(labels: dict[str, int], label: str, version: int) -> None:
    """Moves ``label`` to ``version``, last in order: a version's labels are listed in the
    order they were attached (as AWS lists them)."""
    labels.pop(label, None)
    labels[label] = version


def schedule_deletion(tenant: Tenant, key: str, purge_after: datetime,
                      ctx: RequestContext, at: datetime) -> None:
    state = check_secret(tenant, key, at)
    check_not_scheduled(state)
    tenant.record(ManagedDeletionScheduled, ctx, at, key=key,
                  current=state["labels"].get(CURRENT), purge_after=format_time(purge_after))


def restore(tenant: Tenant, key: str, ctx: RequestContext, at: datetime) -> None:
    state = check_secret(tenant, key, at)
    if state["deleted_at"] is not None:
        tenant.record(ManagedSecretRestored, ctx, at, key=key,
                      current=state["labels"].get(CURRENT))


def purge_now(tenant: Tenant, key: str, ctx: RequestContext, at: datetime) -> list[int]:
    """Ends the incarnation at once (scheduled or not): returns the versions destroyed."""
    return purge(tenant, key, check_secret(tenant, key, at), ctx, at)


def purge(tenant: Tenant, key: str, state: ManagedState, ctx: RequestContext,
          at: datetime) -> list[int]:
    """Ends the incarnation: returns its versions, destroyed (their data keys must go
    with the save)."""
    versions = unexpired_versions(tenant, key, state)
    tenant.record(ManagedSecretPurged, ctx, at, key=key, current=state["labels"].get(CURRENT),
                  versions=versions)
    return versions
