"""A token's life, asked of the core on both backends: issued, listed, revoked (admin
tokens too, by id or by the token itself), refused at once by every path once revoked,
and each change on record; the bootstrap token replaced by the next one configured."""

from __future__ import annotations

import pytest

from secrets_ledger.core.principals import BearerToken, Principal, hash_token
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.domain.changes import RequestContext
from secrets_ledger.domain.errors import InvalidRequest, TokenNotFound, Unauthorized
from secrets_ledger.runtime import LedgerRuntime
from tests.support import Blocking, run

OPERATOR = Principal.operator("cli")
STRONG = "e2e-admin-5f0c1b7a9d2e4c6b8a0f1e3d5c7b9a2d"


def revoke_any(runtime: LedgerRuntime, token: str) -> str:
    return run(runtime.ledger.tokens.revoke_any(OPERATOR, token, RequestInfo("revoke")))


def refused(runtime: LedgerRuntime, token: str) -> bool:
    try:
        run(runtime.ledger.tenants.list_all(BearerToken.of(token)))
    except Unauthorized:
        return True
    return False


def test_an_admin_token_can_be_revoked_and_is_refused_at_once(
        runtime: LedgerRuntime, ledger: Blocking, ctx: RequestContext) -> None:
    issued = ledger.issue_token("admin", None, ctx)
    assert not refused(runtime, issued.token)
    assert revoke_any(runtime, issued.token_id) == issued.token_id
    assert refused(runtime, issued.token)


def test_a_token_can_be_revoked_by_the_token_itself(
        runtime: LedgerRuntime, ledger: Blocking, ctx: RequestContext) -> None:
    issued = ledger.issue_token("admin", None, ctx)
    assert revoke_any(runtime, issued.token) == issued.token_id
    assert refused(runtime, issued.token)


def test_revoking_an_unknown_or_revoked_token_is_token_not_found(
        runtime: LedgerRuntime, ledger: Blocking, ctx: RequestContext) -> None:
    issued = ledger.issue_token("admin", None, ctx)
    revoke_any(runtime, issued.token_id)
    for token in (issued.token_id, issued.token, "tok_0000000000000000", "tok_\x00",
                  "slt_not_a_token"):
        with pytest.raises(TokenNotFound):
            revoke_any(runtime, token)


def test_the_tenant_path_revokes_only_that_tenants_tokens(
        runtime: LedgerRuntime, ledger: Blocking, tenant: str, ctx: RequestContext) -> None:
    admin = ledger.issue_token("admin", None, ctx)
    ledger.open_tenant("other", ctx)
    other = ledger.issue_token("reader", "other", ctx)
    for token_id in (admin.token_id, other.token_id):
        with pytest.raises(TokenNotFound):
            ledger.revoke_token(tenant, token_id, ctx)
    assert not refused(runtime, admin.token)


def test_a_tenant_token_revoked_by_the_admin_path_is_in_the_tenants_audit_trail(
        runtime: LedgerRuntime, ledger: Blocking, tenant: str, ctx: RequestContext) -> None:
    reader = ledger.issue_token("reader", tenant, ctx)
    ledger.put_secret(tenant, "k", 1, None, None, ctx)
    revoke_any(runtime, reader.token)
    actions = [row.action for row in ledger.audit(tenant).items]
    assert actions[-2:] == ["write", "token_revoked"]
    with pytest.raises(Unauthorized):
        run(runtime.ledger.reads.value(BearerToken.of(reader.token), tenant, "k",
                                       RequestInfo("read")))


def test_a_revoked_token_is_refused_by_writes_and_value_reads_at_once(
        runtime: LedgerRuntime, ledger: Blocking, tenant: str, ctx: RequestContext) -> None:
    admin = BearerToken.of(token := ledger.issue_token("admin", None, ctx).token)
    run(runtime.ledger.secrets.put(admin, tenant, "k", 1, None, None, RequestInfo("w")))
    run(runtime.ledger.reads.value(admin, tenant, "k", RequestInfo("r")))
    revoke_any(runtime, token)
    with pytest.raises(Unauthorized):
        run(runtime.ledger.secrets.put(admin, tenant, "k", 2, None, None, RequestInfo("w")))
    with pytest.raises(Unauthorized):
        run(runtime.ledger.reads.value(admin, tenant, "k", RequestInfo("r")))


def test_the_admin_lists_every_token_and_never_a_secret_or_its_hash(
        runtime: LedgerRuntime, ledger: Blocking, tenant: str, ctx: RequestContext) -> None:
    admin = ledger.issue_token("admin", None, ctx)
    writer = ledger.issue_token("writer", tenant, ctx, ttl_seconds=60)
    revoke_any(runtime, admin.token_id)
    listed = run(runtime.ledger.tokens.list_all(OPERATOR))
    assert [(t.token_id, t.role, t.tenant) for t in listed] == [
        (admin.token_id, "admin", None), (writer.token_id, "writer", tenant)]
    assert listed[0].revoked_at is not None and listed[1].revoked_at is None
    assert listed[1].expires_at == writer.expires_at and listed[0].created_at
    text = repr(listed)  # every field of every record
    assert admin.token not in text and writer.token not in text
    assert admin.token.split("_", 2)[2] not in text  # the secret part, whole
    assert BearerToken.of(writer.token).digest not in text


def test_listing_is_filtered_by_tenant_on_both_paths(
        runtime: LedgerRuntime, ledger: Blocking, tenant: str, ctx: RequestContext) -> None:
    ledger.issue_token("admin", None, ctx)
    ledger.open_tenant("other", ctx)
    mine = ledger.issue_token("auditor", tenant, ctx)
    ledger.issue_token("reader", "other", ctx)
    by_filter = run(runtime.ledger.tokens.list_all(OPERATOR, tenant))
    by_tenant = run(runtime.ledger.tokens.list_tenant(OPERATOR, tenant))
    assert [t.token_id for t in by_filter] == [t.token_id for t in by_tenant] == [mine.token_id]


def test_every_token_change_names_who_made_it(
        runtime: LedgerRuntime, ledger: Blocking, tenant: str, ctx: RequestContext) -> None:
    admin = ledger.issue_token("admin", None, ctx)
    revoke_any(runtime, admin.token_id)
    [listed] = run(runtime.ledger.tokens.list_all(OPERATOR))
    assert (listed.created_by, listed.revoked_by) == (ctx.actor, OPERATOR.token_id)
    reader = ledger.issue_token("reader", tenant, ctx)
    revoke_any(runtime, reader.token_id)
    trail = [(row.action, row.actor) for row in ledger.audit(tenant).items]
    assert trail[-2:] == [("token_created", ctx.actor), ("token_revoked", OPERATOR.token_id)]


def bootstrap(runtime: LedgerRuntime, token: str | None) -> str | None:
    return run(runtime.ledger.tokens.bootstrap(token))


def test_a_new_bootstrap_token_revokes_the_previous_one(runtime: LedgerRuntime) -> None:
    first, second = STRONG, STRONG[::-1]
    bootstrap(runtime, first)
    bootstrap(runtime, second)
    assert refused(runtime, first)
    assert not refused(runtime, second)
    [old, new] = run(runtime.ledger.tokens.list_all(OPERATOR))
    assert old.revoked_by == "serve" and new.revoked_at is None
    assert (new.role, new.created_by, new.description) == ("admin", "serve",
                                                           "LEDGER_BOOTSTRAP_TOKEN")


def test_the_same_bootstrap_token_at_every_start_stays_the_one_token(
        runtime: LedgerRuntime, ledger: Blocking, ctx: RequestContext) -> None:
    other_admin = ledger.issue_token("admin", None, ctx)
    for _ in range(2):
        bootstrap(runtime, STRONG)
    assert not refused(runtime, STRONG) and not refused(runtime, other_admin.token)
    assert len(run(runtime.ledger.tokens.list_all(OPERATOR))) == 2


@pytest.mark.parametrize("weak", ["short-token", "a" * 64, "abcd" * 16,
                                  "259b93aa17c0e9b2d4f1a8807c3e2d55"])
def test_a_weak_bootstrap_token_is_refused_and_stores_nothing(
        runtime: LedgerRuntime, weak: str) -> None:
    with pytest.raises(InvalidRequest, match="LEDGER_BOOTSTRAP_TOKEN"):
        bootstrap(runtime, weak)
    assert run(runtime.ledger.tokens.list_all(OPERATOR)) == []


def test_a_revoked_bootstrap_token_configured_again_is_refused(runtime: LedgerRuntime) -> None:
    bootstrap(runtime, STRONG)
    revoke_any(runtime, STRONG)
    with pytest.raises(InvalidRequest, match="revoked"):
        bootstrap(runtime, STRONG)
    assert refused(runtime, STRONG)


def test_a_tenant_token_cannot_be_the_bootstrap_token(
        runtime: LedgerRuntime, ledger: Blocking, tenant: str, ctx: RequestContext) -> None:
    reader = ledger.issue_token("reader", tenant, ctx)
    with pytest.raises(InvalidRequest, match="admin"):
        bootstrap(runtime, reader.token)


def test_a_bootstrap_token_made_later_elsewhere_is_left_live(runtime: LedgerRuntime) -> None:
    first, second = STRONG, STRONG[::-1]
    bootstrap(runtime, first)
    # Another process, started at once with another new token, has stored it meanwhile.
    rows = runtime.storage.token_rows
    rows.insert(("tok_bootlater", hash_token(second), "admin", None, None, None),
                "LEDGER_BOOTSTRAP_TOKEN", "9999-01-01T00:00:00.000000Z", "serve")
    bootstrap(runtime, first)  # this process's start, going on
    assert not refused(runtime, second) and not refused(runtime, first)
    bootstrap(runtime, second)  # the other process's start, going on
    assert refused(runtime, first) and not refused(runtime, second)


def test_a_bootstrap_token_that_looks_like_an_id_can_be_revoked_by_itself(
        runtime: LedgerRuntime) -> None:
    looks_like_an_id = "tok_" + STRONG.replace("-", "")
    bootstrap(runtime, looks_like_an_id)
    assert revoke_any(runtime, looks_like_an_id).startswith("tok_boot")
    assert refused(runtime, looks_like_an_id)
