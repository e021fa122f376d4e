"""Managed secrets in the tenant aggregate on their own, no storage.

A hypothesis state machine drives one ``Tenant`` with random managed-secret commands
(create, put with labels, move a label, schedule deletion, restore, purge) and compares
it after every step with a model small enough to be obviously right: per name, the
incarnation's versions with their client ids and the labels. Invariants: ``AWSCURRENT``
is on a version of the incarnation as soon as there is one, ``AWSPREVIOUS`` is never on
the current version, labels only name versions of the incarnation, a refused command
records nothing, every event links into the chain, and the events rebuild the same
state from scratch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from secrets_ledger.domain import managed
from secrets_ledger.domain.chain import recompute_hash
from secrets_ledger.domain.changes import RequestContext, SealedValue
from secrets_ledger.domain.errors import (
    InvalidRequest,
    LedgerError,
    SecretDeleted,
    SecretExists,
    SecretNotFound,
    VersionIdInUse,
)
from secrets_ledger.domain.managed import CURRENT, PREVIOUS, NewVersion, SecretMetadata
from secrets_ledger.domain.tenant import Tenant

AT = datetime(2024, 1, 1, tzinfo=UTC)
SPACE = "sm:us-east-1"
NAMES = ("a", "b/c")
IDS = tuple(f"{n:032d}" for n in range(6))
LABELS = (CURRENT, PREVIOUS, "AWSPENDING", "MINE")
NOTHING = SecretMetadata(None, None, None)


def seal(key: str, version: int, key_version: int) -> SealedValue:
    return SealedValue(f"ct:{key}:{version}", f"dek:{key}:{version}")


@dataclass
class SecretModel:
    base: int
    versions: dict[str, int] = field(default_factory=dict)  # client id -> version
    labels: dict[str, int] = field(default_factory=dict)
    scheduled: bool = False


class ManagedMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tenant = Tenant.open("acme", RequestContext("tok", "r0"), AT)
        self.model: dict[str, SecretModel] = {}
        self.latest: dict[str, int] = {}  # per key, across incarnations
        self.steps = 0

    def ctx(self) -> RequestContext:
        self.steps += 1
        return RequestContext("tok", f"r{self.steps}")

    def refused(self, error: type[LedgerError], command: Any) -> None:
        before = len(self.tenant.pending_events)
        with pytest.raises(error):
            command()
        assert len(self.tenant.pending_events) == before, "a refused command recorded"

    @staticmethod
    def key(name: str) -> str:
        return managed.managed_key(SPACE, name)

    # ---- rules ----------------------------------------------------------------------

    @rule(name=st.sampled_from(NAMES), client_id=st.sampled_from(IDS), value=st.booleans())
    def create(self, name: str, client_id: str, value: bool) -> None:
        first = NewVersion(client_id, [CURRENT]) if value else None
        command = lambda: managed.create(self.tenant, SPACE, name, "abcdef", NOTHING,  # noqa: E731
                                         first, seal, self.ctx(), AT)
        if name in self.model:
            known = value and client_id in self.model[name].versions
            self.refused(VersionIdInUse if known else SecretExists, command)
            return
        version, purged = command()
        assert purged == []
        base = self.latest.get(self.key(name), 0)
        self.model[name] = SecretModel(base)
        if value:
            assert version == base + 1
            self._written(name, client_id, version, [CURRENT])

    def _written(self, name: str, client_id: str, version: int, labels: list[str]) -> None:
        secret = self.model[name]
        if not secret.versions and CURRENT not in labels:
            labels = [*labels, CURRENT]
        if CURRENT in labels and CURRENT in secret.labels:
            secret.labels[PREVIOUS] = secret.labels[CURRENT]
        for label in labels:
            secret.labels[label] = version
        if secret.labels.get(PREVIOUS) == secret.labels.get(CURRENT):
            del secret.labels[PREVIOUS]
        secret.versions[client_id] = version
        self.latest[self.key(name)] = version

    @rule(name=st.sampled_from(NAMES), client_id=st.sampled_from(IDS),
          labels=st.lists(st.sampled_from(LABELS), min_size=1, max_size=2, unique=True))
    def put(self, name: str, client_id: str, labels: list[str]) -> None:
        secret = self.model.get(name)
        command = lambda: managed.write_version(  # noqa: E731
            self.tenant, self.key(name), NewVersion(client_id, labels), seal, self.ctx(), AT)
        if secret is None:
            self.refused(SecretNotFound, command)
        elif client_id in secret.versions:
            self.refused(VersionIdInUse, command)
        else:
            version = command()
            assert version == self.latest.get(self.key(name), 0) + 1
            self._written(name, client_id, version, labels)

    @rule(name=st.sampled_from(NAMES), label=st.sampled_from(LABELS),
          to=st.one_of(st.none(), st.sampled_from(IDS)),
          source=st.one_of(st.none(), st.sampled_from(IDS)))
    def move_label(self, name: str, label: str, to: str | None, source: str | None) -> None:
        secret = self.model.get(name)
        if secret is None or (to is not None and to not in secret.versions) or (
                source is not None and source not in secret.versions):
            return  # the core refuses unknown ids before the domain is asked
        to_v = None if to is None else secret.versions[to]
        from_v = None if source is None else secret.versions[source]
        command = lambda: managed.move_label(self.tenant, self.key(name), label,  # noqa: E731
                                             to_v, from_v, self.ctx(), AT)
        holder = secret.labels.get(label)
        if (from_v is not None and holder != from_v) or (
                from_v is None and holder is not None and holder != to_v) or (
                label == PREVIOUS and to_v is not None and to_v == secret.labels.get(CURRENT)) or (
                label == CURRENT and from_v is not None and to_v is None):
            self.refused(InvalidRequest, command)
            return
        command()
        if from_v is not None:
            del secret.labels[label]
        if to_v is not None:
            secret.labels[label] = to_v
        if label == CURRENT and from_v is not None and from_v != to_v:
            secret.labels[PREVIOUS] = from_v
        if label == CURRENT and to_v is not None and secret.labels.get(PREVIOUS) == to_v:
            del secret.labels[PREVIOUS]

    @rule(name=st.sampled_from(NAMES))
    def schedule_deletion(self, name: str) -> None:
        secret = self.model.get(name)
        command = lambda: managed.schedule_deletion(  # noqa: E731
            self.tenant, self.key(name), AT + timedelta(days=7), self.ctx(), AT)
        if secret is None:
            self.refused(SecretNotFound, command)
        elif secret.scheduled:
            self.refused(SecretDeleted, command)
        else:
            command()
            secret.scheduled = True

    @rule(name=st.sampled_from(NAMES))
    def restore(self, name: str) -> None:
        if name not in self.model:
            self.refused(SecretNotFound,
                         lambda: managed.restore(self.tenant, self.key(name), self.ctx(), AT))
            return
        managed.restore(self.tenant, self.key(name), self.ctx(), AT)
        self.model[name].scheduled = False

    @rule(name=st.sampled_from(NAMES))
    def purge(self, name: str) -> None:
        secret = self.model.get(name)
        if secret is None:
            self.refused(SecretNotFound, lambda: managed.purge_now(
                self.tenant, self.key(name), self.ctx(), AT))
            return
        versions = managed.purge_now(self.tenant, self.key(name), self.ctx(), AT)
        assert versions == sorted(secret.versions.values())
        del self.model[name]

    # ---- invariants -----------------------------------------------------------------

    @invariant()
    def state_equals_the_model(self) -> None:
        live = {state["name"]: state for state in self.tenant.managed.values()}
        assert set(live) == set(self.model)
        for name, secret in self.model.items():
            state = live[name]
            assert state["base"] == secret.base
            assert state["ids"] == secret.versions
            assert state["labels"] == secret.labels
            assert (state["deleted_at"] is not None) == secret.scheduled

    @invariant()
    def labels_name_versions_of_the_incarnation(self) -> None:
        for secret in self.model.values():
            if secret.versions:
                assert CURRENT in secret.labels
            assert set(secret.labels.values()) <= set(secret.versions.values())
            if PREVIOUS in secret.labels:
                assert secret.labels[PREVIOUS] != secret.labels.get(CURRENT)
            assert all(v > secret.base for v in secret.versions.values())

    @invariant()
    def every_event_links_and_the_events_rebuild_the_state(self) -> None:
        events = list(self.tenant.pending_events)
        head = events[0].hash
        for event in events[1:]:
            assert event.prev_hash == head
            assert recompute_hash(event) == event.hash
            head = event.hash
        rebuilt = None
        for event in events:
            rebuilt = event.mutate(rebuilt)
        assert rebuilt is not None
        assert rebuilt.managed == self.tenant.managed
        assert rebuilt.secrets == self.tenant.secrets


TestManagedStateMachine = ManagedMachine.TestCase
TestManagedStateMachine.settings = settings(
    max_examples=100, stateful_step_count=30, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
