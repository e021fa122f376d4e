"""Transactions: several keys in one event, all or nothing."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import (
    assert_problem,
    audit_items,
    get_json,
    list_all_keys,
    put_value,
    secret_path,
    verify,
)


def _tx(client: httpx.Client, tenant: str, operations: list[dict[str, Any]],
        **headers: str) -> httpx.Response:
    return client.post(f"/v1/tenants/{tenant}/transactions", json={"operations": operations},
                       headers=headers)


def _snapshot(client: httpx.Client, tenant: str) -> list[tuple[str, int]]:
    return [(i["key"], i["version"]) for i in list_all_keys(client, tenant)]


def test_set_and_delete_apply_in_one_event(writer: httpx.Client, admin: httpx.Client,
                                           tenant: str) -> None:
    put_value(writer, tenant, "old", "o")
    put_value(writer, tenant, "old", "o2")
    put_value(writer, tenant, "kept", "k")
    events = verify(admin, tenant)["events"]
    request_id = f"tx-{uuid.uuid4().hex}"
    response = _tx(writer, tenant, [
        {"op": "set", "key": "new", "value": {"n": 1}},
        {"op": "set", "key": "kept", "value": "k2"},
        {"op": "delete", "key": "old"},
    ], **{"X-Request-Id": request_id})
    assert response.status_code == 200, response.text
    assert response.json() == {"results": [{"key": "new", "version": 1},
                                           {"key": "kept", "version": 2},
                                           {"key": "old", "version": 2}]}
    assert verify(admin, tenant)["events"] == events + 1
    assert get_json(writer, secret_path(tenant, "new"))["value"] == {"n": 1}
    assert get_json(writer, secret_path(tenant, "kept"))["value"] == "k2"
    assert_problem(writer.get(secret_path(tenant, "old")), 410, "secret_deleted")
    rows = [r for r in audit_items(admin, tenant) if r["request_id"] == request_id]
    assert sorted((r["action"], r["key"], r["version"]) for r in rows) == [
        ("delete", "old", 2), ("write", "kept", 2), ("write", "new", 1)]


def test_failing_if_version_is_412_and_applies_nothing(writer: httpx.Client,
                                                       admin: httpx.Client,
                                                       tenant: str) -> None:
    put_value(writer, tenant, "a", 1)
    put_value(writer, tenant, "b", 1)
    put_value(writer, tenant, "b", 2)
    before = _snapshot(writer, tenant)
    events = verify(admin, tenant)["events"]
    response = _tx(writer, tenant, [
        {"op": "set", "key": "a", "value": 10, "if_version": 1},
        {"op": "set", "key": "c", "value": 10},
        {"op": "delete", "key": "b", "if_version": 1},
    ])
    problem = assert_problem(response, 412, "version_conflict")
    assert problem["key"] == "b"
    assert problem["current_version"] == 2
    assert _snapshot(writer, tenant) == before
    assert get_json(writer, secret_path(tenant, "a"))["value"] == 1
    assert verify(admin, tenant)["events"] == events


def test_if_version_matching_every_key_applies(writer: httpx.Client, tenant: str) -> None:
    put_value(writer, tenant, "a", 1)
    put_value(writer, tenant, "b", 1)
    response = _tx(writer, tenant, [
        {"op": "set", "key": "a", "value": 2, "if_version": 1},
        {"op": "delete", "key": "b", "if_version": 1},
    ])
    assert response.status_code == 200, response.text
    assert _snapshot(writer, tenant) == [("a", 2)]


def test_if_version_zero_creates_only(writer: httpx.Client, tenant: str) -> None:
    created = _tx(writer, tenant, [{"op": "set", "key": "a", "value": 1, "if_version": 0}])
    assert created.status_code == 200, created.text
    assert created.json()["results"] == [{"key": "a", "version": 1}]
    again = _tx(writer, tenant, [{"op": "set", "key": "a", "value": 2, "if_version": 0}])
    problem = assert_problem(again, 412, "version_conflict")
    assert (problem["key"], problem["current_version"]) == ("a", 1)
    assert get_json(writer, secret_path(tenant, "a"))["value"] == 1


def test_if_version_zero_accepts_a_deleted_key(writer: httpx.Client, tenant: str) -> None:
    put_value(writer, tenant, "a", 1)
    assert writer.delete(secret_path(tenant, "a")).status_code == 204
    response = _tx(writer, tenant, [{"op": "set", "key": "a", "value": 2, "if_version": 0}])
    assert response.status_code == 200, response.text
    assert response.json()["results"] == [{"key": "a", "version": 2}]


def test_delete_of_absent_key_is_412_and_applies_nothing(writer: httpx.Client,
                                                         tenant: str) -> None:
    response = _tx(writer, tenant, [{"op": "set", "key": "a", "value": 1},
                                    {"op": "delete", "key": "ghost"}])
    problem = assert_problem(response, 412)
    assert problem["key"] == "ghost"
    assert problem["current_version"] is None
    assert _snapshot(writer, tenant) == []


def test_key_twice_is_400(writer: httpx.Client, tenant: str) -> None:
    response = _tx(writer, tenant, [{"op": "set", "key": "a", "value": 1},
                                    {"op": "delete", "key": "a"}])
    assert_problem(response, 400, "invalid_request")
    response = _tx(writer, tenant, [{"op": "set", "key": "a", "value": 1},
                                    {"op": "set", "key": "a", "value": 2}])
    assert_problem(response, 400, "invalid_request")
    assert _snapshot(writer, tenant) == []


@pytest.mark.parametrize("count", [0, 101])
def test_operation_count_out_of_range_is_400(writer: httpx.Client, tenant: str,
                                             count: int) -> None:
    operations = [{"op": "set", "key": f"k{i}", "value": i} for i in range(count)]
    assert_problem(_tx(writer, tenant, operations), 400, "invalid_request")
    assert _snapshot(writer, tenant) == []


def test_hundred_operations_are_accepted(writer: httpx.Client, tenant: str) -> None:
    operations = [{"op": "set", "key": f"k{i:03d}", "value": i} for i in range(100)]
    response = _tx(writer, tenant, operations)
    assert response.status_code == 200, response.text
    assert len(response.json()["results"]) == 100
    assert len(_snapshot(writer, tenant)) == 100


@pytest.mark.parametrize("operation", [
    {"op": "rename", "key": "a"},
    {"op": "set", "key": "a"},
    {"op": "set", "key": 1, "value": 1},
    {"op": "set", "key": "a", "value": 1, "if_version": "1"},
    {"op": "set", "key": "a", "value": 1, "if_version": -1},
    {"op": "delete"},
], ids=["unknown-op", "no-value", "int-key", "string-if-version", "negative-if-version",
        "no-key"])
def test_malformed_operation_is_400(writer: httpx.Client, tenant: str,
                                    operation: dict[str, Any]) -> None:
    assert_problem(_tx(writer, tenant, [operation]), 400, "invalid_request")
    assert _snapshot(writer, tenant) == []


def test_transaction_on_unknown_tenant_is_404(admin: httpx.Client) -> None:
    response = _tx(admin, f"nope-{uuid.uuid4().hex[:8]}",
                   [{"op": "set", "key": "a", "value": 1}])
    assert_problem(response, 404, "tenant_not_found")


def test_transaction_idempotency_key_replays(writer: httpx.Client, tenant: str) -> None:
    headers = {"Idempotency-Key": f"tx-{uuid.uuid4().hex}"}
    operations = [{"op": "set", "key": "a", "value": 1}, {"op": "set", "key": "b", "value": 2}]
    first = _tx(writer, tenant, operations, **headers)
    assert first.status_code == 200, first.text
    again = _tx(writer, tenant, operations, **headers)
    assert again.status_code == 200, again.text
    assert again.json() == first.json()
    assert _snapshot(writer, tenant) == [("a", 1), ("b", 1)]
