"""The audit trail, chain verification, shredding and tenant key rotation."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import (
    Server,
    assert_problem,
    audit_items,
    create_tenant,
    get_json,
    issue_token,
    put_value,
    secret_path,
    verify,
)

ACTIONS = {"tenant_opened", "write", "delete", "undelete", "destroy", "rollback", "read",
           "key_rotated", "token_created", "token_revoked", "shredded"}


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _shred(admin: httpx.Client, tenant: str) -> httpx.Response:
    return admin.delete(f"/v1/tenants/{tenant}", headers={"X-Confirm-Shred": tenant})


# ---- audit ------------------------------------------------------------------------------


def test_value_read_is_recorded_before_the_response(writer: httpx.Client, reader: httpx.Client,
                                                    reader_token: dict[str, Any],
                                                    auditor: httpx.Client, tenant: str) -> None:
    put_value(writer, tenant, "k", "v1")
    put_value(writer, tenant, "k", "v2")
    request_id = f"read-{uuid.uuid4().hex}"
    response = reader.get(secret_path(tenant, "k"), headers={"X-Request-Id": request_id})
    assert response.status_code == 200, response.text
    rows = audit_items(auditor, tenant, action="read")
    assert [(r["key"], r["version"], r["actor"], r["request_id"]) for r in rows] == [
        ("k", 2, reader_token["token_id"], request_id)]


def test_read_of_an_old_version_records_that_version(writer: httpx.Client,
                                                     reader: httpx.Client,
                                                     auditor: httpx.Client,
                                                     tenant: str) -> None:
    first = put_value(writer, tenant, "k", "v1")
    put_value(writer, tenant, "k", "v2")
    assert reader.get(secret_path(tenant, "k"), params={"version": 1}).status_code == 200
    assert reader.get(secret_path(tenant, "k"),
                      params={"at": first["created_at"]}).status_code == 200
    assert [r["version"] for r in audit_items(auditor, tenant, action="read")] == [1, 1]


def test_every_change_appears_with_its_action(server: Server, admin: httpx.Client,
                                              writer: httpx.Client,
                                              writer_token: dict[str, Any],
                                              tenant: str) -> None:
    put_value(writer, tenant, "k", "v1")
    put_value(writer, tenant, "k", "v2")
    writer.get(secret_path(tenant, "k"))
    assert writer.delete(secret_path(tenant, "k")).status_code == 204
    assert writer.post(secret_path(tenant, "k", "/undelete")).status_code == 200
    assert writer.post(secret_path(tenant, "k", "/rollback"),
                       json={"version": 1}).status_code == 200
    assert writer.post(secret_path(tenant, "k", "/destroy"),
                       json={"versions": [2]}).status_code == 200
    assert admin.post(f"/v1/tenants/{tenant}/keys/rotate").status_code == 200
    spare = issue_token(admin, tenant, "reader")
    assert admin.delete(f"/v1/tenants/{tenant}/tokens/{spare['token_id']}").status_code == 204
    assert _shred(admin, tenant).status_code == 200
    rows = audit_items(admin, tenant)
    assert {r["action"] for r in rows} == ACTIONS
    by_action = {r["action"]: r for r in rows}
    for action in ("tenant_opened", "key_rotated", "token_created", "token_revoked",
                   "shredded"):
        assert (by_action[action]["key"], by_action[action]["version"]) == (None, None), action
    keyed = [(r["action"], r["key"], r["version"]) for r in rows if r["key"] is not None]
    assert keyed == [("write", "k", 1), ("write", "k", 2), ("read", "k", 2), ("delete", "k", 2),
                     ("undelete", "k", 2), ("rollback", "k", 3), ("destroy", "k", 2)]
    assert all(r["actor"] == writer_token["token_id"] for r in rows
               if r["action"] in {"write", "read", "delete", "undelete", "rollback", "destroy"})
    for row in rows:
        assert set(row) == {"position", "at", "action", "key", "version", "actor", "request_id"}


def test_audit_filters_by_key_actor_and_action(writer: httpx.Client, reader: httpx.Client,
                                               writer_token: dict[str, Any],
                                               reader_token: dict[str, Any],
                                               auditor: httpx.Client, tenant: str) -> None:
    put_value(writer, tenant, "a", 1)
    put_value(writer, tenant, "b", 1)
    put_value(writer, tenant, "a", 2)
    reader.get(secret_path(tenant, "a"))
    reader.get(secret_path(tenant, "b"))
    everything = audit_items(auditor, tenant)
    by_key = audit_items(auditor, tenant, key="a")
    assert by_key == [r for r in everything if r["key"] == "a"]
    assert [(r["action"], r["version"]) for r in by_key] == [("write", 1), ("write", 2),
                                                             ("read", 2)]
    by_reader = audit_items(auditor, tenant, actor=reader_token["token_id"])
    assert [(r["action"], r["key"]) for r in by_reader] == [("read", "a"), ("read", "b")]
    by_writer = audit_items(auditor, tenant, actor=writer_token["token_id"])
    assert [r["action"] for r in by_writer] == ["write"] * 3
    writes = audit_items(auditor, tenant, action="write")
    assert writes == [r for r in everything if r["action"] == "write"]
    combined = audit_items(auditor, tenant, key="b", action="read",
                           actor=reader_token["token_id"])
    assert [(r["key"], r["action"]) for r in combined] == [("b", "read")]


def test_audit_filters_by_time_range(writer: httpx.Client, auditor: httpx.Client,
                                     tenant: str) -> None:
    for i in range(6):
        put_value(writer, tenant, f"k{i}", i)
    everything = audit_items(auditor, tenant)
    writes = [r for r in everything if r["action"] == "write"]
    since, until = writes[1]["at"], writes[4]["at"]
    expected = [r for r in everything if _when(since) <= _when(r["at"]) < _when(until)]
    assert [r["key"] for r in expected] == ["k1", "k2", "k3"]
    assert audit_items(auditor, tenant, since=since, until=until) == expected
    assert audit_items(auditor, tenant, since=since) == [
        r for r in everything if _when(r["at"]) >= _when(since)]
    assert audit_items(auditor, tenant, until=until) == [
        r for r in everything if _when(r["at"]) < _when(until)]
    assert audit_items(auditor, tenant, since=until, until=since) == []


def test_audit_times_accept_a_zone_offset(writer: httpx.Client, auditor: httpx.Client,
                                          tenant: str) -> None:
    for i in range(3):
        put_value(writer, tenant, f"k{i}", i)
    writes = audit_items(auditor, tenant, action="write")
    since_utc = writes[1]["at"]
    offset = _when(since_utc).astimezone(timezone(timedelta(hours=2))).isoformat()
    assert offset.endswith("+02:00")
    assert audit_items(auditor, tenant, since=offset) == audit_items(auditor, tenant,
                                                                     since=since_utc)


def test_audit_pages_with_cursor_in_increasing_position(writer: httpx.Client,
                                                        auditor: httpx.Client,
                                                        tenant: str) -> None:
    response = writer.post(f"/v1/tenants/{tenant}/transactions", json={"operations": [
        {"op": "set", "key": f"k{i:02d}", "value": i} for i in range(25)]})
    assert response.status_code == 200, response.text
    for i in range(5):
        put_value(writer, tenant, f"k{i:02d}", "again")
    everything = audit_items(auditor, tenant)
    paged: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 7}
    pages = 0
    while True:
        page = get_json(auditor, f"/v1/tenants/{tenant}/audit", **params)
        assert len(page["items"]) <= 7
        paged.extend(page["items"])
        pages += 1
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert paged == everything
    assert pages == -(-len(everything) // 7)
    positions = [r["position"] for r in paged]
    assert positions == sorted(positions)
    assert len(set(positions)) == len(positions)


def test_audit_pages_with_a_filter(writer: httpx.Client, auditor: httpx.Client,
                                   tenant: str) -> None:
    for i in range(9):
        put_value(writer, tenant, "same", i)
        put_value(writer, tenant, f"other{i}", i)
    paged: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 2, "key": "same"}
    while True:
        page = get_json(auditor, f"/v1/tenants/{tenant}/audit", **params)
        paged.extend(page["items"])
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert [r["version"] for r in paged] == list(range(1, 10))


def test_audit_never_contains_a_value(writer: httpx.Client, reader: httpx.Client,
                                      auditor: httpx.Client, tenant: str) -> None:
    marker = f"MARKER-{uuid.uuid4().hex}"
    put_value(writer, tenant, "plain", marker)
    put_value(writer, tenant, "nested", {"deep": [marker]})
    writer.post(f"/v1/tenants/{tenant}/transactions", json={"operations": [
        {"op": "set", "key": "tx", "value": marker}]})
    put_value(writer, tenant, "plain", "other")
    writer.post(secret_path(tenant, "plain", "/rollback"), json={"version": 1})
    for key in ("plain", "nested", "tx"):
        assert marker in reader.get(secret_path(tenant, key)).text
    pages: list[str] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        response = auditor.get(f"/v1/tenants/{tenant}/audit", params=params)
        assert response.status_code == 200, response.text
        pages.append(response.text)
        cursor = response.json()["next_cursor"]
        if cursor is None:
            break
        params["cursor"] = cursor
    assert len(pages) > 1
    assert not any(marker in page for page in pages)
    assert not any(marker[7:] in page for page in pages)


# ---- verify -----------------------------------------------------------------------------


def test_verify_reports_ok_with_events_and_head(admin: httpx.Client, writer: httpx.Client,
                                                auditor: httpx.Client, tenant: str) -> None:
    opened = get_json(auditor, f"/v1/tenants/{tenant}/verify")
    assert opened["ok"] is True
    assert isinstance(opened["events"], int) and opened["events"] >= 1
    assert re.fullmatch(r"[0-9a-f]{32,}", opened["head"])
    put_value(writer, tenant, "k", 1)
    after = get_json(auditor, f"/v1/tenants/{tenant}/verify")
    assert after["ok"] is True
    assert after["events"] == opened["events"] + 1
    assert after["head"] != opened["head"]
    assert verify(admin, tenant) == after


def test_verify_of_unknown_tenant_is_404(admin: httpx.Client) -> None:
    response = admin.get(f"/v1/tenants/nope-{uuid.uuid4().hex[:8]}/verify")
    assert_problem(response, 404, "tenant_not_found")


# ---- shredding --------------------------------------------------------------------------


def test_shred_without_confirmation_is_400(admin: httpx.Client, writer: httpx.Client,
                                           tenant: str) -> None:
    put_value(writer, tenant, "k", "v")
    assert_problem(admin.delete(f"/v1/tenants/{tenant}"), 400, "invalid_request")
    wrong = admin.delete(f"/v1/tenants/{tenant}", headers={"X-Confirm-Shred": "other"})
    assert_problem(wrong, 400, "invalid_request")
    assert get_json(writer, secret_path(tenant, "k"))["value"] == "v"


def test_shred_with_confirmation_is_200(admin: httpx.Client, tenant: str) -> None:
    response = _shred(admin, tenant)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tenant"] == tenant
    shredded_at = _when(body["shredded_at"])
    assert shredded_at.tzinfo is not None
    assert shredded_at <= datetime.now(UTC) + timedelta(minutes=5)


def test_after_shred_value_reads_are_410(admin: httpx.Client, writer: httpx.Client,
                                         reader: httpx.Client, tenant: str) -> None:
    first = put_value(writer, tenant, "k", "v1")
    put_value(writer, tenant, "k", "v2")
    assert _shred(admin, tenant).status_code == 200
    for client in (reader, writer, admin):
        for params in ({}, {"version": 1}, {"at": first["created_at"]}):
            response = client.get(secret_path(tenant, "k"), params=params)
            assert_problem(response, 410, "tenant_shredded")
            assert "v1" not in response.text


def test_after_shred_writes_are_410(admin: httpx.Client, writer: httpx.Client,
                                    tenant: str) -> None:
    put_value(writer, tenant, "k", "v1")
    assert _shred(admin, tenant).status_code == 200
    attempts = [
        writer.put(secret_path(tenant, "k"), json={"value": "x"}),
        writer.put(secret_path(tenant, "new"), json={"value": "x"}),
        writer.post(f"/v1/tenants/{tenant}/transactions",
                    json={"operations": [{"op": "set", "key": "t", "value": 1}]}),
        writer.post(secret_path(tenant, "k", "/rollback"), json={"version": 1}),
    ]
    for response in attempts:
        assert_problem(response, 410, "tenant_shredded")


def test_after_shred_rotation_tokens_and_second_shred_are_410(admin: httpx.Client,
                                                              tenant: str) -> None:
    assert _shred(admin, tenant).status_code == 200
    assert_problem(admin.post(f"/v1/tenants/{tenant}/keys/rotate"), 410, "tenant_shredded")
    assert_problem(admin.post(f"/v1/tenants/{tenant}/tokens", json={"role": "reader"}), 410,
                   "tenant_shredded")
    assert_problem(_shred(admin, tenant), 410, "tenant_shredded")


def test_after_shred_audit_versions_and_verify_still_work(admin: httpx.Client,
                                                          writer: httpx.Client,
                                                          auditor: httpx.Client,
                                                          tenant: str) -> None:
    put_value(writer, tenant, "k", "v1")
    put_value(writer, tenant, "k", "v2")
    before = verify(auditor, tenant)
    assert _shred(admin, tenant).status_code == 200
    versions = get_json(auditor, secret_path(tenant, "k", "/versions"))
    assert [i["version"] for i in versions["items"]] == [1, 2]
    rows = audit_items(auditor, tenant)
    assert rows[-1]["action"] == "shredded"
    assert [r["action"] for r in rows].count("write") == 2
    after = verify(auditor, tenant)
    assert after["ok"] is True
    assert after["events"] == before["events"] + 1


def test_shred_leaves_other_tenants_alone(admin: httpx.Client, writer: httpx.Client,
                                          tenant: str) -> None:
    other = create_tenant(admin)
    put_value(admin, other, "k", "kept")
    assert _shred(admin, tenant).status_code == 200
    assert get_json(admin, secret_path(other, "k"))["value"] == "kept"


# ---- tenant key rotation ----------------------------------------------------------------


def test_rotate_key_returns_the_new_key_version(admin: httpx.Client, tenant: str) -> None:
    response = admin.post(f"/v1/tenants/{tenant}/keys/rotate")
    assert response.status_code == 200, response.text
    assert response.json() == {"key_version": 2}
    assert get_json(admin, f"/v1/tenants/{tenant}/verify")["ok"] is True
    again = admin.post(f"/v1/tenants/{tenant}/keys/rotate")
    assert again.json() == {"key_version": 3}


def test_old_versions_stay_readable_after_rotation(admin: httpx.Client, writer: httpx.Client,
                                                   tenant: str) -> None:
    put_value(writer, tenant, "k", "under-key-1")
    put_value(writer, tenant, "other", {"n": 1})
    assert admin.post(f"/v1/tenants/{tenant}/keys/rotate").json() == {"key_version": 2}
    put_value(writer, tenant, "k", "under-key-2")
    assert admin.post(f"/v1/tenants/{tenant}/keys/rotate").json() == {"key_version": 3}
    assert get_json(writer, secret_path(tenant, "k"), version=1)["value"] == "under-key-1"
    assert get_json(writer, secret_path(tenant, "k"), version=2)["value"] == "under-key-2"
    assert get_json(writer, secret_path(tenant, "other"))["value"] == {"n": 1}
    rolled = writer.post(secret_path(tenant, "k", "/rollback"), json={"version": 1})
    assert rolled.status_code == 200, rolled.text
    assert get_json(writer, secret_path(tenant, "k"))["value"] == "under-key-1"


def test_rotate_key_of_unknown_tenant_is_404(admin: httpx.Client) -> None:
    response = admin.post(f"/v1/tenants/nope-{uuid.uuid4().hex[:8]}/keys/rotate")
    assert_problem(response, 404, "tenant_not_found")


@pytest.mark.parametrize("role", ["writer", "reader", "auditor"])
def test_existing_tokens_keep_working_after_rotation(server: Server, admin: httpx.Client,
                                                     tenant: str, role: str) -> None:
    issued = issue_token(admin, tenant, role)
    assert admin.post(f"/v1/tenants/{tenant}/keys/rotate").status_code == 200
    with server.client(issued["token"]) as client:
        assert client.get(f"/v1/tenants/{tenant}/secrets").status_code == 200
