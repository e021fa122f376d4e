"""The tenant aggregate: one event stream per tenant holding every change to its secrets.
Commands are imperative (``write``), events past tense; each command checks its invariants
with a small ``check_*`` method, then records exactly one event (nothing when a check
refuses). Plaintext never reaches it: writes get a ``Sealer`` that seals each version."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict

from eventsourcing.domain import Aggregate

from secrets_ledger.domain.chain import GENESIS, link_hash
from secrets_ledger.domain.changes import (
    Change,
    DeleteKey,
    Precondition,
    RequestContext,
    Sealer,
)
from secrets_ledger.domain.errors import (
    InvalidRequest,
    SecretDeleted,
    SecretNotFound,
    TenantMoved,
    TenantShredded,
    VersionConflict,
    VersionDestroyed,
    VersionNotFound,
)
from secrets_ledger.domain.managed_state import ManagedState, MountState
from secrets_ledger.domain.tenant_ids import tenant_id_for as tenant_id_for
from secrets_ledger.domain.tenant_ids import tenant_text as tenant_text


class KeyState(TypedDict):
    latest: int
    deleted: bool
    destroyed: list[int]


class Tenant(Aggregate):
    """One tenant's secrets: for each key its latest version, liveness and destroyed versions."""

    def __init__(self, name: str, key_version: int) -> None:
        self.name = name
        self.key_version = key_version
        self.head = GENESIS
        self.shredded = False
        self.moved_to: str | None = None  # the tenant group it moved to: no more changes here
        self.secrets: dict[str, KeyState] = {}
        self.managed: dict[str, ManagedState] = {}  # managed secrets by key (domain.managed)
        self.mounts: dict[str, MountState] = {}  # by path (domain.mounts)

    # ---- events ---------------------------------------------------------------------

    class Event(Aggregate.Event):
        actor: str
        request_id: str
        idempotency_key: str | None
        request_hash: str | None
        prev_hash: str
        hash: str

        def apply(self, aggregate: Any) -> None:
            self.apply_to(aggregate)
            aggregate.head = self.hash

        def apply_to(self, tenant: Tenant) -> None:
            """Evolves the tenant's state; the chain head is advanced by ``apply``."""

    class Opened(Event, Aggregate.Created):
        name: str
        key_version: int

    class SecretVersionsWritten(Event):
        writes: list[dict[str, Any]]
        deletions: list[dict[str, Any]]

        def apply_to(self, tenant: Tenant) -> None:
            for write in self.writes:
                state = tenant.secrets.setdefault(write["key"], {"latest": 0, "deleted": False,
                                                                 "destroyed": []})
                state["latest"] = write["version"]
                state["deleted"] = False
            for deletion in self.deletions:
                tenant.secrets[deletion["key"]]["deleted"] = True

    class SecretDeleted(Event):
        key: str
        version: int

        def apply_to(self, tenant: Tenant) -> None:
            tenant.secrets[self.key]["deleted"] = True

    class SecretUndeleted(Event):
        key: str
        version: int

        def apply_to(self, tenant: Tenant) -> None:
            tenant.secrets[self.key]["deleted"] = False

    class VersionsDestroyed(Event):
        key: str
        versions: list[int]

        def apply_to(self, tenant: Tenant) -> None:
            destroyed = tenant.secrets[self.key]["destroyed"]
            destroyed.extend(self.versions)
            destroyed.sort()

    class TenantKeyRotated(Event):
        key_version: int

        def apply_to(self, tenant: Tenant) -> None:
            tenant.key_version = self.key_version

    class TokenIssued(Event):
        token_id: str
        role: str
        expires_at: str | None

    class TokenRevoked(Event):
        token_id: str

    class Shredded(Event):
        def apply_to(self, tenant: Tenant) -> None:
            tenant.shredded = True

    class MovedOut(Event):
        group: str

        def apply_to(self, tenant: Tenant) -> None:
            tenant.moved_to = self.group

    class MovedIn(Event):
        source: str  # the group it came from, whose history it holds, up to MovedOut

        def apply_to(self, tenant: Tenant) -> None:
            tenant.moved_to = None

    # ---- commands -------------------------------------------------------------------

    @classmethod
    def open(cls, name: str, ctx: RequestContext, at: datetime) -> Tenant:
        tenant_id = tenant_id_for(name)
        fields = {**_context_fields(ctx, GENESIS), "name": name, "key_version": 1}
        digest = link_hash(tenant_id, 1, cls.Opened.__qualname__, at, fields)
        return cls._create(cls.Opened, id=tenant_id, timestamp=at, hash=digest, **fields)

    def write(self, changes: Sequence[Change], seal: Sealer, ctx: RequestContext,
              at: datetime) -> list[tuple[str, int]]:
        """Writes new versions and soft-deletes keys atomically; returns (key, version)s."""
        self.check_not_shredded()
        self.check_each_key_once(changes)
        writes: list[dict[str, Any]] = []
        deletions: list[dict[str, Any]] = []
        results: list[tuple[str, int]] = []
        for change in changes:
            self.check_precondition(change.key, change.precondition)
            state = self.secrets.get(change.key)
            if isinstance(change, DeleteKey):
                if state is None or state["deleted"]:
                    raise VersionConflict(change.key, state["latest"] if state else None,
                                          state is not None)
                deletions.append({"key": change.key, "version": state["latest"]})
                results.append((change.key, state["latest"]))
                continue
            if change.rollback_of is not None:
                self.check_can_roll_back(change.key, change.rollback_of)
            version = (state["latest"] if state else 0) + 1
            sealed = seal(change.key, version, self.key_version)
            writes.append({"key": change.key, "version": version, **sealed.fields(),
                           "key_version": self.key_version, "metadata": change.metadata,
                           "rollback_of": change.rollback_of})
            results.append((change.key, version))
        self.record(self.SecretVersionsWritten, ctx, at, writes=writes, deletions=deletions)
        return results

    def delete(self, key: str, precondition: Precondition | None, ctx: RequestContext,
               at: datetime) -> bool:
        """Soft-deletes a live key; a key already deleted records nothing (returns False)."""
        self.check_not_shredded()
        state = self.check_key_exists(key)
        self.check_precondition(key, precondition)
        if state["deleted"]:
            return False
        self.record(self.SecretDeleted, ctx, at, key=key, version=state["latest"])
        return True

    def undelete(self, key: str, ctx: RequestContext, at: datetime) -> int:
        self.check_not_shredded()
        state = self.check_key_exists(key)
        if state["deleted"]:
            self.record(self.SecretUndeleted, ctx, at, key=key, version=state["latest"])
        return state["latest"]

    def destroy(self, key: str, versions: Sequence[int], ctx: RequestContext,
                at: datetime) -> list[int]:
        """Marks versions destroyed; returns those not destroyed before (maybe none)."""
        self.check_not_shredded()
        state = self.check_key_exists(key)
        if not versions:
            raise InvalidRequest("name at least one version to destroy")
        for version in versions:
            self.check_version_exists(key, version)
        fresh = sorted(set(versions) - set(state["destroyed"]))
        if fresh:
            self.record(self.VersionsDestroyed, ctx, at, key=key, versions=fresh)
        return fresh

    def rotate_key(self, ctx: RequestContext, at: datetime) -> int:
        self.check_not_shredded()
        self.record(self.TenantKeyRotated, ctx, at, key_version=self.key_version + 1)
        return self.key_version

    def issue_token(self, token_id: str, role: str, expires_at: str | None,
                    ctx: RequestContext, at: datetime) -> None:
        self.check_not_shredded()
        self.record(self.TokenIssued, ctx, at, token_id=token_id, role=role,
                     expires_at=expires_at)

    def revoke_token(self, token_id: str, ctx: RequestContext, at: datetime) -> None:
        self.record(self.TokenRevoked, ctx, at, token_id=token_id)

    def shred(self, ctx: RequestContext, at: datetime) -> None:
        self.check_not_shredded()
        self.record(self.Shredded, ctx, at)

    def move_out(self, group: str, ctx: RequestContext, at: datetime) -> None:
        """The last event of this stream here: the tenant's history goes on in ``group``."""
        self.check_not_shredded()
        self.check_not_moved()
        self.record(self.MovedOut, ctx, at, group=group)

    def move_in(self, source: str, ctx: RequestContext, at: datetime) -> None:
        """Its history copied here (up to ``MovedOut``): it goes on here."""
        self.record(self.MovedIn, ctx, at, source=source)

    # ---- invariants -----------------------------------------------------------------

    def check_not_shredded(self) -> None:
        if self.shredded:
            raise TenantShredded("the tenant was shredded; its values are gone")

    def check_not_moved(self) -> None:
        if self.moved_to is not None:
            raise TenantMoved("the tenant is moving to another tenant group; retry")

    def check_key_exists(self, key: str) -> KeyState:
        state = self.secrets.get(key)
        if state is None:
            raise SecretNotFound("no such secret")
        return state

    def check_version_exists(self, key: str, version: int) -> None:
        state = self.check_key_exists(key)
        if not 1 <= version <= state["latest"]:
            raise VersionNotFound("no such version")

    def check_can_roll_back(self, key: str, version: int) -> None:
        state = self.check_key_exists(key)
        if state["deleted"]:
            raise SecretDeleted("the secret is deleted; undelete it first")
        self.check_version_exists(key, version)
        if version in state["destroyed"]:
            raise VersionDestroyed("that version was destroyed")

    def check_each_key_once(self, changes: Sequence[Change]) -> None:
        if len({change.key for change in changes}) != len(changes):
            raise InvalidRequest("a key may appear at most once in one transaction")

    def check_precondition(self, key: str, precondition: Precondition | None) -> None:
        if precondition is None:
            return
        state = self.secrets.get(key)
        if precondition.kind == "version":
            holds = state is not None and state["latest"] == precondition.version
        elif precondition.kind == "live":
            holds = state is not None and not state["deleted"]
        else:
            holds = state is None or state["deleted"]
        if not holds:
            raise VersionConflict(key, state["latest"] if state else None,
                                  bool(state and state["deleted"]))

    # ---- recording ------------------------------------------------------------------

    def record(self, event_class: type[Event], ctx: RequestContext, at: datetime,
                **fields: Any) -> None:
        fields = {**_context_fields(ctx, self.head), **fields}
        digest = link_hash(self.id, self.version + 1, event_class.__qualname__, at, fields)
        self.trigger_event(event_class, timestamp=at, hash=digest, **fields)


def _context_fields(ctx: RequestContext, prev_hash: str) -> dict[str, Any]:
    return {"actor": ctx.actor, "request_id": ctx.request_id,
            "idempotency_key": ctx.idempotency_key, "request_hash": ctx.request_hash,
            "prev_hash": prev_hash}
