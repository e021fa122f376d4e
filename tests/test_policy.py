"""Who may do what, asked of the core itself (no HTTP): every use case, called by every
role with a real token, is admitted or refused as the policy table says; a tenant token
never reaches another tenant; a refused call changes nothing.

The policy is the same whatever stores the ledger: these run on SQLite, and on two tenant
groups (PostgreSQL schemas) with acme and other in different groups, where a token of
one goes to the other's group as the principal it proves.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr

from secrets_ledger.core.directory import placement
from secrets_ledger.core.ledger import Ledger
from secrets_ledger.core.managed_values import SecretRef
from secrets_ledger.core.policy import GLOBAL_USE_CASES, NEEDS, POLICY, UseCase
from secrets_ledger.core.principals import BearerToken, Credential, Principal, Role
from secrets_ledger.core.replay_logs import ReplayedLogs
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.core.settings import GroupStore, Settings
from secrets_ledger.domain.changes import RequestContext, SetValue
from secrets_ledger.domain.errors import Forbidden, LedgerError, TenantNotFound, Unauthorized
from secrets_ledger.domain.log_fold import LogFold, LogSnapshot
from secrets_ledger.domain.managed import SecretMetadata
from secrets_ledger.domain.tenant import tenant_id_for
from secrets_ledger.grouped_runtime import GroupedRuntime, open_runtime
from secrets_ledger.runtime import LedgerRuntime
from tests.conftest import PG_URL
from tests.support import Blocking, run

ROLES: tuple[Role, ...] = ("admin", "writer", "reader", "auditor")
SETUP = RequestContext("tok_setup", "setup")
OPERATOR = Principal.operator()
Call = Callable[[Ledger, Credential, str], Coroutine[Any, Any, Any]]


def _request() -> RequestInfo:
    return RequestInfo(f"req-{uuid.uuid4().hex[:8]}")


# How each use case is called with valid input: an admitted caller succeeds. Shredding
# comes last (it ends the tenant's writes).
CALLS: dict[str, tuple[UseCase, Call]] = {
    "tenants.open": (UseCase.OPEN_TENANT,
                     lambda ledger, who, t: ledger.tenants.open(who, f"t-{uuid.uuid4().hex[:8]}",
                                                                _request())),
    "tenants.list_all": (UseCase.LIST_TENANTS, lambda ledger, who, t: ledger.tenants.list_all(who)),
    "tenants.rotate_key": (UseCase.ROTATE_TENANT_KEY,
                           lambda ledger, who, t: ledger.tenants.rotate_key(who, t, _request())),
    "tokens.issue": (UseCase.ISSUE_TOKEN,
                     lambda ledger, who, t: ledger.tokens.issue(who, "reader", t, None, "",
                                                                _request())),
    "tokens.revoke": (UseCase.REVOKE_TOKEN,
                      lambda ledger, who, t: _revoke_a_spare(ledger, who, t)),
    "tokens.revoke_any": (UseCase.REVOKE_ANY_TOKEN,
                          lambda ledger, who, t: ledger.tokens.revoke_any(
                              who, SPARE_TOKENS[f"any {t}"], _request())),
    "tokens.list_tenant": (UseCase.LIST_TOKENS,
                           lambda ledger, who, t: ledger.tokens.list_tenant(who, t)),
    "tokens.list_all": (UseCase.LIST_ALL_TOKENS,
                        lambda ledger, who, t: ledger.tokens.list_all(who, t)),
    "secrets.write": (UseCase.WRITE_SECRETS,
                      lambda ledger, who, t: ledger.secrets.write(
                          who, t, [_set("batch")], {"batch": 1}, _request())),
    "secrets.put": (UseCase.WRITE_SECRETS,
                    lambda ledger, who, t: ledger.secrets.put(who, t, "k", "v", None, None,
                                                              _request())),
    "secrets.delete": (UseCase.DELETE_SECRET,
                       lambda ledger, who, t: ledger.secrets.delete(who, t, "to-delete", None,
                                                                    _request())),
    "secrets.undelete": (UseCase.UNDELETE_SECRET,
                         lambda ledger, who, t: ledger.secrets.undelete(who, t, "to-delete",
                                                                        _request())),
    "secrets.roll_back": (UseCase.ROLL_BACK_SECRET,
                          lambda ledger, who, t: ledger.secrets.roll_back(who, t, "rolled", 1,
                                                                          _request())),
    "secrets.destroy": (UseCase.DESTROY_VERSIONS,
                        lambda ledger, who, t: ledger.secrets.destroy(who, t, "destroyed", [1],
                                                                      _request())),
    "imports.diff": (UseCase.IMPORT_SECRETS,
                     lambda ledger, who, t: ledger.imports.diff(who, t, {"imported": 1})),
    "imports.json_object": (UseCase.IMPORT_SECRETS,
                            lambda ledger, who, t: ledger.imports.json_object(
                                who, t, {"imported": 1}, _request())),
    "imports.history_diff": (UseCase.IMPORT_SECRETS,
                             lambda ledger, who, t: ledger.imports.history_diff(
                                 who, t, {"kept": [(1, None), (2, {"label": "current"})]})),
    "imports.histories": (UseCase.IMPORT_SECRETS,
                          lambda ledger, who, t: ledger.imports.histories(
                              who, t, {"kept": [(1, None), (2, {"label": "current"})]},
                              _request())),
    "reads.value": (UseCase.READ_VALUE,
                    lambda ledger, who, t: ledger.reads.value(who, t, "rolled", _request())),
    "reads.keys": (UseCase.LIST_KEYS, lambda ledger, who, t: ledger.reads.keys(who, t)),
    "reads.versions": (UseCase.LIST_VERSIONS,
                       lambda ledger, who, t: ledger.reads.versions(who, t, "rolled")),
    "history.audit": (UseCase.READ_AUDIT_TRAIL,
                      lambda ledger, who, t: ledger.history.audit(who, t)),
    "history.verify": (UseCase.VERIFY_TENANT,
                       lambda ledger, who, t: ledger.history.verify(who, t)),
    "history.verify_all": (UseCase.VERIFY_ALL,
                           lambda ledger, who, t: ledger.history.verify_all(who)),
    "history.verify_logs": (UseCase.VERIFY_ALL,
                            lambda ledger, who, t: ledger.history.verify_logs(who)),
    "history.replay_check": (UseCase.VERIFY_ALL,
                             lambda ledger, who, t: ledger.history.replay_check(who)),
    "history.replay_verdict": (UseCase.VERIFY_ALL, lambda ledger, who, t: (
        ledger.history.replay_verdict(who, ReplayedLogs(ledger.door.ports.log_rows, LogFold(
            LogSnapshot(0, {}, {})))))),
    "keys.rotate_master": (UseCase.ROTATE_MASTER_KEY,
                           lambda ledger, who, t: ledger.keys.rotate_master(who)),
    "reads.export": (UseCase.READ_VALUE,
                     lambda ledger, who, t: ledger.reads.export(who, t, _request())),
    "reads.recorded": (UseCase.READ_VALUE,
                       lambda ledger, who, t: ledger.reads.recorded(who, t, "rolled", _request(),
                                                                    None)),
    "managed.create": (UseCase.WRITE_SECRETS,
                       lambda ledger, who, t: ledger.managed.create(
                           who, t, SPACE, f"m-{uuid.uuid4().hex[:8]}", NO_METADATA, "v",
                           uuid.uuid4().hex, _request())),
    "managed.put": (UseCase.WRITE_SECRETS,
                    lambda ledger, who, t: ledger.managed.put(
                        who, t, SPACE, SecretRef("m1"), "v2", uuid.uuid4().hex, ["AWSCURRENT"],
                        _request())),
    "managed.update": (UseCase.WRITE_SECRETS,
                       lambda ledger, who, t: ledger.managed.update(
                           who, t, SPACE, SecretRef("m1"), "new", None, None, uuid.uuid4().hex,
                           _request())),
    "managed.tag": (UseCase.WRITE_SECRETS,
                    lambda ledger, who, t: ledger.managed.tag(
                        who, t, SPACE, SecretRef("m1"), [("k", "v")], [], _request())),
    "managed.move_label": (UseCase.WRITE_SECRETS,
                           lambda ledger, who, t: ledger.managed.move_label(
                               who, t, SPACE, SecretRef("m1"), "MINE", FIRST_ID, None,
                               _request())),
    "managed.delete": (UseCase.DELETE_SECRET,
                       lambda ledger, who, t: ledger.managed.delete(
                           who, t, SPACE, SecretRef("m-del"), 7, False, _request())),
    "managed.restore": (UseCase.UNDELETE_SECRET,
                        lambda ledger, who, t: ledger.managed.restore(
                            who, t, SPACE, SecretRef("m-del"), _request())),
    "managed.delete (force)": (UseCase.DESTROY_VERSIONS,
                              lambda ledger, who, t: ledger.managed.delete(
                                  who, t, SPACE, SecretRef("m-gone"), None, True, _request())),
    "managed_reads.describe": (UseCase.LIST_VERSIONS,
                               lambda ledger, who, t: ledger.managed_reads.describe(
                                   who, t, SPACE, SecretRef("m1"))),
    "managed_reads.listing": (UseCase.LIST_KEYS,
                              lambda ledger, who, t: ledger.managed_reads.listing(
                                  who, t, SPACE, True)),
    "managed_reads.value": (UseCase.READ_VALUE,
                            lambda ledger, who, t: ledger.managed_reads.value(
                                who, t, SPACE, SecretRef("m1"), None, None, _request())),
    "managed_reads.values": (UseCase.READ_VALUE,
                             lambda ledger, who, t: ledger.managed_reads.values(
                                 who, t, SPACE, [SecretRef("m1")], _request())),
    "kv.enable_mount": (UseCase.WRITE_SECRETS,
                        lambda ledger, who, t: ledger.kv.enable_mount(
                            who, t, f"m-{uuid.uuid4().hex[:8]}", "kv", {}, _request())),
    "kv.configure_mount": (UseCase.WRITE_SECRETS,
                           lambda ledger, who, t: ledger.kv.configure_mount(
                               who, t, "kv", {"max_versions": 5}, _request())),
    "kv.write": (UseCase.WRITE_SECRETS,
                 lambda ledger, who, t: ledger.kv.write(who, t, "kv", "k1", {"a": "b"}, None,
                                                        _request())),
    "kv.delete_versions": (UseCase.DELETE_SECRET,
                           lambda ledger, who, t: ledger.kv.delete_versions(
                               who, t, "kv", "k1", [1], _request())),
    "kv.undelete_versions": (UseCase.UNDELETE_SECRET,
                             lambda ledger, who, t: ledger.kv.undelete_versions(
                                 who, t, "kv", "k1", [1], _request())),
    "kv.set_metadata": (UseCase.WRITE_SECRETS,
                        lambda ledger, who, t: ledger.kv.set_metadata(
                            who, t, "kv", "k1", {"cas_required": False}, _request())),
    "kv.destroy_versions": (UseCase.DESTROY_VERSIONS,
                            lambda ledger, who, t: ledger.kv.destroy_versions(
                                who, t, "kv", "k-destroy", [1], _request())),
    "kv.delete_metadata": (UseCase.DESTROY_VERSIONS,
                           lambda ledger, who, t: ledger.kv.delete_metadata(
                               who, t, "kv", "k-purge", _request())),
    "kv.disable_mount": (UseCase.DESTROY_VERSIONS,
                         lambda ledger, who, t: ledger.kv.disable_mount(
                             who, t, "kv-gone", _request())),
    "kv_reads.mounts": (UseCase.LIST_KEYS,
                        lambda ledger, who, t: ledger.kv_reads.mounts(who, t)),
    "kv_reads.mount": (UseCase.LIST_KEYS,
                       lambda ledger, who, t: ledger.kv_reads.mount(who, t, "kv")),
    "kv_reads.metadata": (UseCase.LIST_VERSIONS,
                          lambda ledger, who, t: ledger.kv_reads.metadata(who, t, "kv", "k1")),
    "kv_reads.keys": (UseCase.LIST_KEYS,
                      lambda ledger, who, t: ledger.kv_reads.keys(who, t, "kv", "")),
    "kv_reads.read": (UseCase.READ_VALUE,
                      lambda ledger, who, t: ledger.kv_reads.read(who, t, "kv", "k1", None,
                                                                  _request())),
    "transparency.checkpoint": (UseCase.READ_LOG_PROOFS,
                                lambda ledger, who, t: ledger.transparency.checkpoint(who, t)),
    "transparency.inclusion": (UseCase.READ_LOG_PROOFS,
                               lambda ledger, who, t: ledger.transparency.inclusion(who, t, 0, 1)),
    "transparency.consistency": (
        UseCase.READ_LOG_PROOFS,
        lambda ledger, who, t: ledger.transparency.consistency(who, t, 1, 1)),
    "transparency.leaves": (UseCase.READ_LOG_LEAVES,
                            lambda ledger, who, t: ledger.transparency.leaves(who, t, 0, 1)),
    # A value's proof is asked for with the value: the read admits the caller first.
    "transparency.value_proof": (UseCase.READ_VALUE,
                                 lambda ledger, who, t: _proved_read(ledger, who, t)),
    "transparency.rotate_log_key": (UseCase.ROTATE_LOG_KEY,
                                    lambda ledger, who, t: ledger.transparency.rotate_log_key(
                                        who)),
    "changes.page": (UseCase.FOLLOW_CHANGES,
                     lambda ledger, who, t: ledger.changes.page(who, t)),
    "changes.page all": (UseCase.FOLLOW_ALL_CHANGES,
                         lambda ledger, who, t: ledger.changes.page(who, None)),
    "changes.follow": (UseCase.FOLLOW_CHANGES,
                       lambda ledger, who, t: ledger.changes.follow(who, t)),
    "tenants.shred": (UseCase.SHRED_TENANT,
                      lambda ledger, who, t: ledger.tenants.shred(who, t, _request())),
}
OPERATOR_ONLY = {"tokens.bootstrap"}  # serve's start-up: no caller to admit
SPACE = "sm:us-east-1"
NO_METADATA = SecretMetadata(None, None, None)
FIRST_ID = "first-version-of-m1-" + "0" * 12


def _set(key: str) -> SetValue:
    return SetValue(key)


SPARE_TOKENS: dict[str, str] = {}  # live reader token ids of each tenant, to revoke


async def _proved_read(ledger: Ledger, who: Credential, tenant: str) -> object:
    secret = await ledger.reads.value(who, tenant, "rolled", _request())
    return await ledger.transparency.value_proof(who, tenant, secret)


async def _revoke_a_spare(ledger: Ledger, who: Credential, tenant: str) -> None:
    await ledger.tokens.revoke(who, tenant, SPARE_TOKENS[tenant], _request())


def expected(role: Role, use_case: UseCase, own_tenant: bool) -> type[LedgerError] | None:
    """The refusal the policy table gives (None: admitted)."""
    if role == "admin":
        return None
    if use_case in GLOBAL_USE_CASES:
        return Forbidden
    if not own_tenant:
        return TenantNotFound
    return None if NEEDS[use_case] in POLICY[role] else Forbidden


BLUE = next(name for name in (f"g{n}" for n in range(100))
            if placement("acme", ["home", name]) != placement("other", ["home", name]))
"""A group name that the placement rule gives one of acme and other, home the other."""
Runtime = LedgerRuntime | GroupedRuntime


@pytest.fixture
def storage(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Settings]:
    if request.param == "one store":
        yield Settings(data_dir=tmp_path / "data")
        return
    home, blue = (f"p_{uuid.uuid4().hex[:12]}" for _ in range(2))
    yield Settings(data_dir=tmp_path / "data", database_url=SecretStr(PG_URL),
                   database_schema=home, groups={BLUE: GroupStore(database_schema=blue)})
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        for schema in (home, blue):
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=ROLES)
def world(request: pytest.FixtureRequest, storage: Settings) -> Iterator[tuple[Runtime, Role,
                                                                               str]]:
    """A ledger with tenants acme and other, and a token of the role (for acme)."""
    role: Role = request.param
    runtime = open_runtime(storage, follow=True)
    ledger = Blocking(runtime.ledger)
    for name in ("acme", "other"):
        ledger.open_tenant(name, SETUP)
        for key in ("to-delete", "rolled", "destroyed"):
            ledger.put_secret(name, key, f"{key} of {name}", None, None, SETUP)
        for secret in ("m1", "m-del", "m-gone"):
            run(runtime.ledger.managed.create(OPERATOR, name, SPACE, secret, NO_METADATA, "v",
                                              FIRST_ID, _request()))
        for mount in ("kv", "kv-gone"):
            run(runtime.ledger.kv.enable_mount(OPERATOR, name, mount, "kv", {}, _request()))
        for key in ("k1", "k-destroy", "k-purge"):
            run(runtime.ledger.kv.write(OPERATOR, name, "kv", key, {"v": 1}, None,
                                        _request()))
        SPARE_TOKENS[name] = ledger.issue_token("reader", name, SETUP).token_id
        SPARE_TOKENS[f"any {name}"] = ledger.issue_token("reader", name, SETUP).token_id
    token = ledger.issue_token(role, None if role == "admin" else "acme", SETUP).token
    try:
        yield runtime, role, token
    finally:
        runtime.close()


def head_of(runtime: Runtime, tenant: str) -> int | None:
    heads = [group.storage.streams.head(tenant_id_for(tenant))
             for group in runtime.groups.values()]
    assert sum(head is not None for head in heads) <= 1, "a tenant in two groups"
    return max((head for head in heads if head is not None), default=None)


LAYOUTS = pytest.mark.parametrize("storage", ["one store", "two groups"], indirect=True)


@LAYOUTS
def test_every_use_case_admits_or_refuses_each_role_as_the_policy_says(
        world: tuple[Runtime, Role, str]) -> None:
    runtime, role, token = world
    credential = BearerToken.of(token)
    for tenant, own in (("other", False), ("acme", True)):
        for name, (use_case, call) in CALLS.items():
            refusal = expected(role, use_case, own)
            before = head_of(runtime, tenant)
            if refusal is None:
                run(call(runtime.ledger, credential, tenant))
                continue
            with pytest.raises(refusal):
                run(call(runtime.ledger, credential, tenant))
            assert head_of(runtime, tenant) == before, (name, "a refused call wrote")


@LAYOUTS
def test_an_unknown_token_is_refused_by_every_use_case_and_changes_nothing(
        world: tuple[Runtime, Role, str]) -> None:
    runtime, _, _ = world
    stranger = BearerToken.of("slt_unknown_" + "x" * 40)
    before = head_of(runtime, "acme")
    for name, (_, call) in CALLS.items():
        with pytest.raises(Unauthorized):
            run(call(runtime.ledger, stranger, "acme"))
        assert head_of(runtime, "acme") == before, name


def test_the_policy_table_covers_every_use_case_and_every_use_case_is_called() -> None:
    assert set(NEEDS) == set(UseCase)
    assert {use_case for use_case, _ in CALLS.values()} == set(UseCase)
    groups = {"tenants": "Tenants", "tokens": "Tokens", "secrets": "Secrets",
              "imports": "Imports", "reads": "Reads", "history": "History", "keys": "Keys",
              "managed": "ManagedCommands", "managed_reads": "ManagedReads",
              "kv": "KvCommands", "kv_reads": "KvReads", "transparency": "TransparencyLog",
              "changes": "ChangeFeed"}
    public = set()
    for group in groups:
        module = __import__(f"secrets_ledger.core.{group}", fromlist=[groups[group]])
        cls = getattr(module, groups[group])
        public |= {f"{group}.{name}" for name, member in inspect.getmembers(cls)
                   if inspect.iscoroutinefunction(member) and not name.startswith("_")}
    assert public == {name.split(" ")[0] for name in CALLS} | OPERATOR_ONLY
