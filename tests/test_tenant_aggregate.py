"""The tenant aggregate on its own, no storage: versions, preconditions, the hash chain.

A hypothesis state machine drives one ``Tenant`` with random commands and compares it,
after every step, with a model small enough to be obviously right: for each key the
list of its versions, whether it is deleted, and which versions were destroyed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from secrets_ledger.domain.chain import GENESIS, recompute_hash
from secrets_ledger.domain.changes import (
    Change,
    DeleteKey,
    Precondition,
    RequestContext,
    SealedValue,
    SetValue,
)
from secrets_ledger.domain.errors import (
    InvalidRequest,
    LedgerError,
    SecretDeleted,
    SecretNotFound,
    TenantShredded,
    VersionConflict,
    VersionDestroyed,
    VersionNotFound,
)
from secrets_ledger.domain.tenant import Tenant, tenant_id_for

AT = datetime(2024, 1, 1, tzinfo=UTC)  # any time will do; no test looks at it
KEYS = ("a", "b", "c/d")
SHRED_AFTER_STEPS = 25


def seal(key: str, version: int, key_version: int) -> SealedValue:
    return SealedValue("x", "dek")


def recording_sealer(calls: list[tuple[str, int, int]]) -> Callable[[str, int, int], SealedValue]:
    """A fake sealer whose output names what it sealed, so that events can be checked."""

    def sealer(key: str, version: int, key_version: int) -> SealedValue:
        calls.append((key, version, key_version))
        return SealedValue(f"ct:{key}:{version}", f"dek:{key}:{version}:{key_version}")

    return sealer


def context(n: int = 0) -> RequestContext:
    return RequestContext(actor="tok_writer", request_id=f"req-{n}")


def opened() -> Tenant:
    tenant = Tenant.open("acme", context(), AT)
    return tenant


def recorded(tenant: Tenant) -> list[Any]:
    """The tenant's pending events (typed loosely: each kind has its own fields)."""
    return list(tenant.pending_events)


# ---- the model ------------------------------------------------------------------------


@dataclass
class KeyModel:
    versions: list[int] = field(default_factory=list)
    deleted: bool = False
    destroyed: set[int] = field(default_factory=set)

    @property
    def latest(self) -> int:
        return self.versions[-1]


@dataclass
class TenantModel:
    keys: dict[str, KeyModel] = field(default_factory=dict)
    key_version: int = 1
    shredded: bool = False

    def conflict(self, key: str, expected: Precondition | None) -> tuple[int | None, bool] | None:
        """(current version, deleted) when ``expected`` does not hold of ``key``, else None."""
        if expected is None:
            return None
        state = self.keys.get(key)
        current = (state.latest if state else None, bool(state and state.deleted))
        if expected.kind == "version":
            holds = state is not None and state.latest == expected.version
        elif expected.kind == "live":
            holds = state is not None and not state.deleted
        else:
            holds = state is None or state.deleted
        return None if holds else current

    def as_state(self) -> dict[str, dict[str, Any]]:
        return {
            key: {"latest": k.latest, "deleted": k.deleted, "destroyed": sorted(k.destroyed)}
            for key, k in self.keys.items()
        }


# ---- the state machine ----------------------------------------------------------------

keys = st.sampled_from(KEYS)
preconditions = st.one_of(
    st.none(),
    st.sampled_from([Precondition("live"), Precondition("absent")]),
    st.integers(min_value=0, max_value=3).map(Precondition.at_version),
)
operations = st.lists(
    st.tuples(keys, st.sampled_from(["set", "delete"]), preconditions),
    min_size=1,
    max_size=len(KEYS),
    unique_by=lambda op: op[0],
)


class TenantMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tenant = opened()
        self.model = TenantModel()
        self.steps = 0
        self.checked = 1  # pending events already checked (the Opened event)
        [first] = recorded(self.tenant)
        assert first.prev_hash == GENESIS
        assert recompute_hash(first) == first.hash
        self.head: str = first.hash
        self.sealed: list[tuple[str, int, int]] = []
        self.sealer = recording_sealer(self.sealed)
        self.version_history: dict[str, list[int]] = {}

    # ---- helpers ----------------------------------------------------------------------

    def ctx(self) -> RequestContext:
        self.steps += 1
        return context(self.steps)

    def refused(self, error: type[LedgerError], command: Callable[[], object]) -> LedgerError:
        before = len(self.tenant.pending_events)
        version_before = self.tenant.version
        with pytest.raises(error) as raised:
            command()
        assert len(self.tenant.pending_events) == before, "a refused command recorded an event"
        assert self.tenant.version == version_before
        return raised.value

    def refused_with_conflict(self, command: Callable[[], object], key: str,
                              current: tuple[int | None, bool]) -> None:
        error = self.refused(VersionConflict, command)
        assert error.extra == {"key": key, "current_version": current[0], "deleted": current[1]}

    def new_events(self, count: int, ctx: RequestContext) -> list[Any]:
        """The events the last command recorded; checks their count and their links."""
        events = recorded(self.tenant)[self.checked:]
        assert len(events) == count
        for event in events:
            assert event.prev_hash == self.head
            assert recompute_hash(event) == event.hash
            assert (event.actor, event.request_id) == (ctx.actor, ctx.request_id)
            self.head = event.hash
        self.checked += count
        return events

    # ---- rules ------------------------------------------------------------------------

    @rule(key=keys)
    def write(self, key: str) -> None:
        self.transact([(key, "set", None)])

    @rule(key=keys, data=st.data())
    def write_with_precondition(self, key: str, data: st.DataObject) -> None:
        state = self.model.keys.get(key)
        current = Precondition.at_version(state.latest if state else 0)
        expected = data.draw(st.one_of(st.just(current), preconditions))
        self.transact([(key, "set", expected)])

    @rule(ops=operations)
    def transaction(self, ops: list[tuple[str, str, Precondition | None]]) -> None:
        self.transact(ops)

    def transact(self, ops: list[tuple[str, str, Precondition | None]]) -> None:
        ctx = self.ctx()
        changes: list[Change] = [
            SetValue(key, precondition=p) if kind == "set" else DeleteKey(key, precondition=p)
            for key, kind, p in ops
        ]

        def run() -> list[tuple[str, int]]:
            return self.tenant.write(changes, self.sealer, ctx, AT)

        if self.model.shredded:
            self.refused(TenantShredded, run)
            return
        for key, kind, expected in ops:
            conflict = self.model.conflict(key, expected)
            state = self.model.keys.get(key)
            if conflict is None and kind == "delete" and (state is None or state.deleted):
                conflict = (state.latest if state else None, state is not None)
            if conflict is not None:
                self.refused_with_conflict(run, key, conflict)
                return
        self.sealed.clear()
        results = run()
        [event] = self.new_events(1, ctx)
        assert isinstance(event, Tenant.SecretVersionsWritten)
        expected_results: list[tuple[str, int]] = []
        expected_writes: list[dict[str, Any]] = []
        expected_deletions: list[dict[str, Any]] = []
        for key, kind, _ in ops:
            state = self.model.keys.get(key)
            if kind == "delete":
                assert state is not None
                expected_results.append((key, state.latest))
                expected_deletions.append({"key": key, "version": state.latest})
                continue
            version = state.latest + 1 if state else 1
            expected_results.append((key, version))
            expected_writes.append(self.expected_write(key, version, None))
        assert results == expected_results
        assert event.writes == expected_writes
        assert event.deletions == expected_deletions
        assert self.sealed == [(w["key"], w["version"], self.model.key_version)
                               for w in expected_writes]
        for write in expected_writes:
            self.model_write(write["key"], write["version"])
        for deletion in expected_deletions:
            self.model.keys[deletion["key"]].deleted = True

    def expected_write(self, key: str, version: int, rollback_of: int | None) -> dict[str, Any]:
        kv = self.model.key_version
        return {"key": key, "version": version, "ciphertext": f"ct:{key}:{version}",
                "dek_id": f"dek:{key}:{version}:{kv}", "key_version": kv, "metadata": None,
                "rollback_of": rollback_of}

    def model_write(self, key: str, version: int) -> None:
        state = self.model.keys.setdefault(key, KeyModel())
        state.versions.append(version)
        state.deleted = False
        self.version_history.setdefault(key, []).append(version)

    @rule(key=keys, expected=preconditions)
    def delete(self, key: str, expected: Precondition | None) -> None:
        ctx = self.ctx()

        def run() -> bool:
            return self.tenant.delete(key, expected, ctx, AT)

        state = self.model.keys.get(key)
        conflict = self.model.conflict(key, expected)
        if self.model.shredded:
            self.refused(TenantShredded, run)
        elif state is None:
            self.refused(SecretNotFound, run)
        elif conflict is not None:
            self.refused_with_conflict(run, key, conflict)
        elif state.deleted:
            assert run() is False
            self.new_events(0, ctx)
        else:
            assert run() is True
            [event] = self.new_events(1, ctx)
            assert isinstance(event, Tenant.SecretDeleted)
            assert (event.key, event.version) == (key, state.latest)
            state.deleted = True

    @rule(key=keys)
    def undelete(self, key: str) -> None:
        ctx = self.ctx()

        def run() -> int:
            return self.tenant.undelete(key, ctx, AT)

        state = self.model.keys.get(key)
        if self.model.shredded:
            self.refused(TenantShredded, run)
        elif state is None:
            self.refused(SecretNotFound, run)
        elif not state.deleted:
            assert run() == state.latest
            self.new_events(0, ctx)
        else:
            assert run() == state.latest
            [event] = self.new_events(1, ctx)
            assert isinstance(event, Tenant.SecretUndeleted)
            assert (event.key, event.version) == (key, state.latest)
            state.deleted = False

    def some_version(self, key: str) -> st.SearchStrategy[int]:
        """Mostly versions the key has, sometimes one just past its latest."""
        state = self.model.keys.get(key)
        return st.integers(min_value=1, max_value=(state.latest if state else 0) + 1)

    @rule(key=keys, data=st.data())
    def destroy(self, key: str, data: st.DataObject) -> None:
        ctx = self.ctx()
        versions = data.draw(st.lists(self.some_version(key), max_size=3))

        def run() -> list[int]:
            return self.tenant.destroy(key, versions, ctx, AT)

        state = self.model.keys.get(key)
        if self.model.shredded:
            self.refused(TenantShredded, run)
        elif state is None:
            self.refused(SecretNotFound, run)
        elif not versions:
            self.refused(InvalidRequest, run)
        elif any(v not in state.versions for v in versions):
            self.refused(VersionNotFound, run)
        else:
            fresh = sorted(set(versions) - state.destroyed)
            assert run() == fresh
            if fresh:
                [event] = self.new_events(1, ctx)
                assert isinstance(event, Tenant.VersionsDestroyed)
                assert (event.key, event.versions) == (key, fresh)
            else:
                self.new_events(0, ctx)
            state.destroyed.update(fresh)

    @rule(key=keys, data=st.data())
    def rollback(self, key: str, data: st.DataObject) -> None:
        ctx = self.ctx()
        version = data.draw(self.some_version(key))
        changes: list[Change] = [SetValue(key, rollback_of=version)]

        def run() -> list[tuple[str, int]]:
            return self.tenant.write(changes, self.sealer, ctx, AT)

        state = self.model.keys.get(key)
        if self.model.shredded:
            self.refused(TenantShredded, run)
        elif state is None:
            self.refused(SecretNotFound, run)
        elif state.deleted:
            self.refused(SecretDeleted, run)
        elif version not in state.versions:
            self.refused(VersionNotFound, run)
        elif version in state.destroyed:
            self.refused(VersionDestroyed, run)
        else:
            new_version = state.latest + 1
            assert run() == [(key, new_version)]
            [event] = self.new_events(1, ctx)
            assert isinstance(event, Tenant.SecretVersionsWritten)
            assert event.writes == [self.expected_write(key, new_version, version)]
            assert event.deletions == []
            self.model_write(key, new_version)

    @rule()
    def rotate_key(self) -> None:
        ctx = self.ctx()

        def run() -> int:
            return self.tenant.rotate_key(ctx, AT)

        if self.model.shredded:
            self.refused(TenantShredded, run)
            return
        assert run() == self.model.key_version + 1
        [event] = self.new_events(1, ctx)
        assert isinstance(event, Tenant.TenantKeyRotated)
        assert event.key_version == self.model.key_version + 1
        self.model.key_version += 1

    # Shredding ends the interesting life of a tenant: let it build some history first.
    @precondition(lambda self: self.steps >= SHRED_AFTER_STEPS)
    @rule()
    def shred(self) -> None:
        ctx = self.ctx()

        def run() -> None:
            self.tenant.shred(ctx, AT)

        if self.model.shredded:
            self.refused(TenantShredded, run)
            return
        run()
        [event] = self.new_events(1, ctx)
        assert isinstance(event, Tenant.Shredded)
        self.model.shredded = True

    @precondition(lambda self: self.model.shredded)
    @rule(key=keys)
    def every_command_is_refused_after_shred(self, key: str) -> None:
        ctx = self.ctx()
        commands: list[Callable[[], object]] = [
            lambda: self.tenant.write([SetValue(key)], seal, ctx, AT),
            lambda: self.tenant.write([DeleteKey(key)], seal, ctx, AT),
            lambda: self.tenant.write([SetValue(key, rollback_of=1)], seal, ctx, AT),
            lambda: self.tenant.delete(key, None, ctx, AT),
            lambda: self.tenant.undelete(key, ctx, AT),
            lambda: self.tenant.destroy(key, [1], ctx, AT),
            lambda: self.tenant.rotate_key(ctx, AT),
            lambda: self.tenant.issue_token("tok_2", "writer", None, ctx, AT),
            lambda: self.tenant.shred(ctx, AT),
        ]
        for command in commands:
            self.refused(TenantShredded, command)

    # ---- invariants -------------------------------------------------------------------

    @invariant()
    def state_equals_the_model(self) -> None:
        assert self.tenant.secrets == self.model.as_state()
        assert self.tenant.key_version == self.model.key_version
        assert self.tenant.shredded == self.model.shredded

    @invariant()
    def every_event_was_checked_and_the_head_is_the_last_hash(self) -> None:
        assert len(self.tenant.pending_events) == self.checked
        assert self.tenant.version == self.checked
        assert self.tenant.head == self.head

    @invariant()
    def versions_count_up_from_one_without_gaps(self) -> None:
        for key, versions in self.version_history.items():
            assert versions == list(range(1, len(versions) + 1)), key
            assert self.model.keys[key].versions == versions


TestTenantStateMachine = TenantMachine.TestCase
TestTenantStateMachine.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


# ---- examples -------------------------------------------------------------------------


def test_a_new_tenant_opens_with_key_version_one_and_a_genesis_link() -> None:
    tenant = opened()
    [event] = recorded(tenant)
    assert isinstance(event, Tenant.Opened)
    assert tenant.id == tenant_id_for("acme")
    assert (tenant.name, tenant.key_version, tenant.secrets) == ("acme", 1, {})
    assert event.prev_hash == GENESIS
    assert recompute_hash(event) == event.hash == tenant.head


def test_a_key_may_appear_only_once_per_transaction() -> None:
    tenant = opened()
    with pytest.raises(InvalidRequest):
        tenant.write([SetValue("a"), DeleteKey("a")], seal, context(), AT)
    with pytest.raises(InvalidRequest):
        tenant.write([SetValue("a"), SetValue("a")], seal, context(), AT)
    assert len(tenant.pending_events) == 1
    assert tenant.secrets == {}


def test_deleting_a_deleted_key_records_nothing() -> None:
    tenant = opened()
    tenant.write([SetValue("a")], seal, context(), AT)
    assert tenant.delete("a", None, context(), AT) is True
    events = len(tenant.pending_events)
    assert tenant.delete("a", None, context(), AT) is False
    assert len(tenant.pending_events) == events


def test_undeleting_a_live_key_records_nothing_and_returns_its_version() -> None:
    tenant = opened()
    tenant.write([SetValue("a")], seal, context(), AT)
    tenant.write([SetValue("a")], seal, context(), AT)
    events = len(tenant.pending_events)
    assert tenant.undelete("a", context(), AT) == 2
    assert len(tenant.pending_events) == events


def test_deleting_an_absent_key_is_not_found() -> None:
    tenant = opened()
    with pytest.raises(SecretNotFound):
        tenant.delete("nope", None, context(), AT)
    assert len(tenant.pending_events) == 1


def test_a_transactional_delete_of_an_absent_key_is_a_conflict_with_no_version() -> None:
    tenant = opened()
    with pytest.raises(VersionConflict) as raised:
        tenant.write([DeleteKey("nope")], seal, context(), AT)
    assert raised.value.extra == {"key": "nope", "current_version": None, "deleted": False}


def test_a_transactional_delete_of_a_deleted_key_is_a_conflict_that_says_deleted() -> None:
    tenant = opened()
    tenant.write([SetValue("a")], seal, context(), AT)
    tenant.delete("a", None, context(), AT)
    with pytest.raises(VersionConflict) as raised:
        tenant.write([DeleteKey("a")], seal, context(), AT)
    assert raised.value.extra == {"key": "a", "current_version": 1, "deleted": True}


def test_a_transaction_refused_on_its_last_change_applies_none_of_the_others() -> None:
    tenant = opened()
    tenant.write([SetValue("b")], seal, context(), AT)
    changes: list[Change] = [SetValue("a"), DeleteKey("b"),
                             SetValue("c", precondition=Precondition.at_version(3))]
    with pytest.raises(VersionConflict) as raised:
        tenant.write(changes, seal, context(), AT)
    assert raised.value.extra == {"key": "c", "current_version": None, "deleted": False}
    assert len(tenant.pending_events) == 2
    assert tenant.secrets == {"b": {"latest": 1, "deleted": False, "destroyed": []}}


def test_a_write_to_a_deleted_key_writes_the_next_version_and_makes_it_live() -> None:
    tenant = opened()
    tenant.write([SetValue("a")], seal, context(), AT)
    tenant.delete("a", None, context(), AT)
    assert tenant.write([SetValue("a")], seal, context(), AT) == [("a", 2)]
    assert tenant.secrets["a"] == {"latest": 2, "deleted": False, "destroyed": []}


def test_version_zero_means_absent_or_deleted() -> None:
    assert Precondition.at_version(0) == Precondition("absent")
    tenant = opened()
    assert tenant.write([SetValue("a", precondition=Precondition.at_version(0))], seal,
                        context(), AT) == [("a", 1)]
    with pytest.raises(VersionConflict):
        tenant.write([SetValue("a", precondition=Precondition.at_version(0))], seal,
                     context(), AT)
    tenant.delete("a", None, context(), AT)
    assert tenant.write([SetValue("a", precondition=Precondition.at_version(0))], seal,
                        context(), AT) == [("a", 2)]


def test_if_match_a_version_holds_whether_or_not_the_key_is_deleted() -> None:
    tenant = opened()
    tenant.write([SetValue("a")], seal, context(), AT)
    tenant.delete("a", None, context(), AT)
    assert tenant.write([SetValue("a", precondition=Precondition.at_version(1))], seal,
                        context(), AT) == [("a", 2)]


def test_a_live_precondition_refuses_a_deleted_key() -> None:
    tenant = opened()
    tenant.write([SetValue("a")], seal, context(), AT)
    tenant.delete("a", None, context(), AT)
    with pytest.raises(VersionConflict) as raised:
        tenant.write([SetValue("a", precondition=Precondition("live"))], seal, context(), AT)
    assert raised.value.extra == {"key": "a", "current_version": 1, "deleted": True}


def test_rolling_back_a_deleted_key_asks_for_an_undelete_first() -> None:
    tenant = opened()
    tenant.write([SetValue("a")], seal, context(), AT)
    tenant.delete("a", None, context(), AT)
    with pytest.raises(SecretDeleted):
        tenant.write([SetValue("a", rollback_of=1)], seal, context(), AT)


def test_rolling_back_to_a_destroyed_version_is_refused() -> None:
    tenant = opened()
    tenant.write([SetValue("a")], seal, context(), AT)
    tenant.write([SetValue("a")], seal, context(), AT)
    tenant.destroy("a", [1], context(), AT)
    events = len(tenant.pending_events)
    with pytest.raises(VersionDestroyed):
        tenant.write([SetValue("a", rollback_of=1)], seal, context(), AT)
    assert len(tenant.pending_events) == events


def test_a_rollback_writes_a_new_version_that_names_its_source() -> None:
    tenant = opened()
    tenant.write([SetValue("a")], seal, context(), AT)
    tenant.write([SetValue("a")], seal, context(), AT)
    assert tenant.write([SetValue("a", rollback_of=1)], seal, context(), AT) == [("a", 3)]
    event = recorded(tenant)[-1]
    assert isinstance(event, Tenant.SecretVersionsWritten)
    assert event.writes[0]["rollback_of"] == 1


def test_destroying_needs_at_least_one_existing_version() -> None:
    tenant = opened()
    tenant.write([SetValue("a")], seal, context(), AT)
    with pytest.raises(InvalidRequest):
        tenant.destroy("a", [], context(), AT)
    with pytest.raises(VersionNotFound):
        tenant.destroy("a", [2], context(), AT)
    with pytest.raises(VersionNotFound):
        tenant.destroy("a", [0], context(), AT)
    assert len(tenant.pending_events) == 2


def test_destroying_destroyed_versions_again_records_nothing() -> None:
    tenant = opened()
    tenant.write([SetValue("a")], seal, context(), AT)
    tenant.write([SetValue("a")], seal, context(), AT)
    assert tenant.destroy("a", [2, 1, 1], context(), AT) == [1, 2]
    events = len(tenant.pending_events)
    assert tenant.destroy("a", [1, 2], context(), AT) == []
    assert len(tenant.pending_events) == events
    assert tenant.secrets["a"]["destroyed"] == [1, 2]


def test_new_writes_use_the_rotated_tenant_key() -> None:
    tenant = opened()
    calls: list[tuple[str, int, int]] = []
    sealer = recording_sealer(calls)
    tenant.write([SetValue("a")], sealer, context(), AT)
    assert tenant.rotate_key(context(), AT) == 2
    tenant.write([SetValue("a")], sealer, context(), AT)
    assert calls == [("a", 1, 1), ("a", 2, 2)]
    event = recorded(tenant)[-1]
    assert isinstance(event, Tenant.SecretVersionsWritten)
    assert event.writes[0]["key_version"] == 2


def test_editing_an_event_field_breaks_its_hash() -> None:
    tenant = opened()
    tenant.write([SetValue("a")], seal, context(), AT)
    event = recorded(tenant)[-1]
    assert recompute_hash(event) == event.hash
    event.writes[0]["ciphertext"] = "y"
    assert recompute_hash(event) != event.hash


def test_a_batch_of_read_records_keeps_every_field_of_each_read() -> None:
    from dataclasses import asdict

    from secrets_ledger.domain.reads import ReadRecord, ValueReads

    reads = [ReadRecord("t1", "k", 3, "tok_a", "req-1"), ReadRecord("t2", "a/b", 1, "tok_b",
                                                                   "req-2")]
    recorded = ValueReads.record(reads, datetime.now(UTC))
    assert recorded.reads == [asdict(read) for read in reads]
