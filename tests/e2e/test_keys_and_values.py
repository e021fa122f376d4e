"""Key listings and pagination; key names and value sizes at and beyond their limits."""

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

KEYS = ["vapi/privateApiKey", "vapi/publicKey", "db/password", "db/user", "Zeta", "alpha",
        "alpha.beta", "alpha-beta", "alpha_beta", "alpha/beta", "a1", "A1", "0-start",
        "db", "db.prod/x"]


def _seed(writer: httpx.Client, tenant: str, keys: list[str]) -> None:
    operations = [{"op": "set", "key": key, "value": i} for i, key in enumerate(keys)]
    response = writer.post(f"/v1/tenants/{tenant}/transactions",
                           json={"operations": operations})
    assert response.status_code == 200, response.text


# ---- listings ---------------------------------------------------------------------------


def test_listing_is_sorted_by_key_and_never_holds_values(writer: httpx.Client,
                                                         tenant: str) -> None:
    marker = f"MARKER-{uuid.uuid4().hex}"
    for key in KEYS:
        put_value(writer, tenant, key, marker)
    response = writer.get(f"/v1/tenants/{tenant}/secrets")
    assert response.status_code == 200, response.text
    body = response.json()
    assert [i["key"] for i in body["items"]] == sorted(KEYS)
    assert body["next_cursor"] is None
    for item in body["items"]:
        assert set(item) == {"key", "version", "updated_at"}
        assert item["version"] == 1
    assert marker not in response.text


def test_listing_reports_current_version(writer: httpx.Client, tenant: str) -> None:
    for _ in range(3):
        put_value(writer, tenant, "k", 1)
    [item] = list_all_keys(writer, tenant)
    assert item["version"] == 3


def test_listing_with_prefix(writer: httpx.Client, tenant: str) -> None:
    _seed(writer, tenant, KEYS)
    for prefix in ("vapi/", "db", "alpha", "A", "zzz"):
        listed = [i["key"] for i in list_all_keys(writer, tenant, prefix=prefix)]
        assert listed == sorted(k for k in KEYS if k.startswith(prefix)), prefix


def test_listing_pages_through_every_key(writer: httpx.Client, tenant: str) -> None:
    keys = [f"svc/{i:03d}" for i in range(53)] + ["other/x"]
    _seed(writer, tenant, keys)
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 10, "prefix": "svc/"}
        if cursor is not None:
            params["cursor"] = cursor
        page = get_json(writer, f"/v1/tenants/{tenant}/secrets", **params)
        assert len(page["items"]) <= 10
        seen.extend(i["key"] for i in page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(k for k in keys if k.startswith("svc/"))
    assert pages == 6


def test_listing_limit_one_pages_one_by_one(writer: httpx.Client, tenant: str) -> None:
    _seed(writer, tenant, ["c", "a", "b"])
    page = get_json(writer, f"/v1/tenants/{tenant}/secrets", limit=1)
    assert [i["key"] for i in page["items"]] == ["a"]
    page = get_json(writer, f"/v1/tenants/{tenant}/secrets", limit=1, cursor=page["next_cursor"])
    assert [i["key"] for i in page["items"]] == ["b"]
    page = get_json(writer, f"/v1/tenants/{tenant}/secrets", limit=1, cursor=page["next_cursor"])
    assert [i["key"] for i in page["items"]] == ["c"]
    assert page["next_cursor"] is None


@pytest.mark.parametrize("limit", [0, 1001, -1])
def test_listing_limit_out_of_range_is_400(writer: httpx.Client, tenant: str,
                                           limit: int) -> None:
    response = writer.get(f"/v1/tenants/{tenant}/secrets", params={"limit": limit})
    assert_problem(response, 400, "invalid_request")


@pytest.mark.parametrize("limit", [0, 1001])
def test_audit_limit_out_of_range_is_400(admin: httpx.Client, tenant: str, limit: int) -> None:
    response = admin.get(f"/v1/tenants/{tenant}/audit", params={"limit": limit})
    assert_problem(response, 400, "invalid_request")


def test_listing_limit_1000_is_accepted(writer: httpx.Client, tenant: str) -> None:
    response = writer.get(f"/v1/tenants/{tenant}/secrets", params={"limit": 1000})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("cursor", ["forged", "YQ", "YQ.0000", "!!!.???", "a" * 300])
def test_forged_cursor_is_400_invalid_request(writer: httpx.Client, tenant: str,
                                              cursor: str) -> None:
    _seed(writer, tenant, ["a", "b", "c"])
    response = writer.get(f"/v1/tenants/{tenant}/secrets", params={"limit": 1, "cursor": cursor})
    assert_problem(response, 400, "invalid_request")


def test_tampered_cursor_is_400(writer: httpx.Client, tenant: str) -> None:
    _seed(writer, tenant, ["a", "b", "c"])
    cursor = get_json(writer, f"/v1/tenants/{tenant}/secrets", limit=1)["next_cursor"]
    flipped = cursor[:-1] + ("0" if cursor[-1] != "0" else "1")
    response = writer.get(f"/v1/tenants/{tenant}/secrets", params={"limit": 1, "cursor": flipped})
    assert_problem(response, 400, "invalid_request")


def test_cursor_of_another_listing_is_400(writer: httpx.Client, tenant: str) -> None:
    _seed(writer, tenant, ["a/1", "a/2", "b/1", "b/2"])
    cursor = get_json(writer, f"/v1/tenants/{tenant}/secrets", limit=1,
                      prefix="a/")["next_cursor"]
    response = writer.get(f"/v1/tenants/{tenant}/secrets",
                          params={"limit": 1, "prefix": "b/", "cursor": cursor})
    assert_problem(response, 400, "invalid_request")


def test_audit_forged_cursor_is_400(admin: httpx.Client, tenant: str) -> None:
    response = admin.get(f"/v1/tenants/{tenant}/audit", params={"cursor": "MQ.forged"})
    assert_problem(response, 400, "invalid_request")


def test_listing_at_a_time_shows_the_key_set_then(writer: httpx.Client, admin: httpx.Client,
                                                  tenant: str) -> None:
    put_value(writer, tenant, "a", 1)
    second = put_value(writer, tenant, "b", 1)
    put_value(writer, tenant, "a", 2)
    assert writer.delete(secret_path(tenant, "b")).status_code == 204
    put_value(writer, tenant, "c", 1)
    then = get_json(writer, f"/v1/tenants/{tenant}/secrets", at=second["created_at"])
    assert [(i["key"], i["version"]) for i in then["items"]] == [("a", 1), ("b", 1)]
    [deletion] = audit_items(admin, tenant, key="b", action="delete")
    later = get_json(writer, f"/v1/tenants/{tenant}/secrets", at=deletion["at"])
    assert [(i["key"], i["version"]) for i in later["items"]] == [("a", 2)]


# ---- key names --------------------------------------------------------------------------


@pytest.mark.parametrize("key", [
    "vapi/privateApiKey", "a/versions/b", "versions/x", "x.versions", "a-b_c.d/E-F",
    "...x", "a/.b", "k" * 256, "a/" * 127 + "zz",
])
def test_good_key_names_work_on_every_route(writer: httpx.Client, tenant: str, key: str) -> None:
    assert len(key) <= 256
    put_value(writer, tenant, key, "v1", expect=201)
    put_value(writer, tenant, key, "v2", expect=200)
    got = get_json(writer, secret_path(tenant, key))
    assert (got["key"], got["value"]) == (key, "v2")
    versions = get_json(writer, secret_path(tenant, key, "/versions"))
    assert versions["key"] == key
    assert [i["key"] for i in list_all_keys(writer, tenant)] == [key]
    assert writer.delete(secret_path(tenant, key)).status_code == 204
    undone = writer.post(secret_path(tenant, key, "/undelete"))
    assert undone.json() == {"key": key, "version": 2}
    rolled = writer.post(secret_path(tenant, key, "/rollback"), json={"version": 1})
    assert rolled.status_code == 200, rolled.text
    assert get_json(writer, secret_path(tenant, key))["value"] == "v1"


BAD_KEYS = {
    "leading-slash": "/abc",
    "trailing-slash": "abc/",
    "empty-segment": "a//b",
    "dotdot-segment": "a/%2E%2E/b",
    "dot-segment": "a/%2E/b",
    "only-dotdot": "%2E%2E",
    "last-versions": "a/versions",
    "last-undelete": "a/undelete",
    "last-rollback": "a/rollback",
    "last-destroy": "a/destroy",
    "bare-versions": "versions",
    "257-chars": "k" * 257,
    "space": "a%20b",
    "colon": "a:b",
    "non-ascii": "cl%C3%A9",
    "percent": "a%25b",
}


@pytest.mark.parametrize("key", list(BAD_KEYS.values()), ids=list(BAD_KEYS))
def test_bad_key_name_is_400_and_writes_nothing(writer: httpx.Client, admin: httpx.Client,
                                                tenant: str, key: str) -> None:
    events = verify(admin, tenant)["events"]
    response = writer.put(f"/v1/tenants/{tenant}/secrets/{key}", json={"value": "x"})
    assert_problem(response, 400, "invalid_request")
    assert list_all_keys(writer, tenant) == []
    assert audit_items(admin, tenant, action="write") == []
    assert verify(admin, tenant)["events"] == events


@pytest.mark.parametrize("key", ["/abc", "a//b", "a/../b", "a/./b", "a/versions", "k" * 257,
                                 "", "a b"])
def test_bad_key_name_in_transaction_is_400_and_writes_nothing(writer: httpx.Client,
                                                               tenant: str, key: str) -> None:
    response = writer.post(f"/v1/tenants/{tenant}/transactions", json={"operations": [
        {"op": "set", "key": "fine", "value": 1}, {"op": "set", "key": key, "value": 2}]})
    assert_problem(response, 400, "invalid_request")
    assert list_all_keys(writer, tenant) == []


# ---- value sizes ------------------------------------------------------------------------


def test_value_of_65536_bytes_is_accepted(writer: httpx.Client, tenant: str) -> None:
    value = "x" * (65_536 - 2)  # the two quotes make 65,536 bytes of compact JSON
    put_value(writer, tenant, "big", value, expect=201)
    assert get_json(writer, secret_path(tenant, "big"))["value"] == value


def test_value_of_65537_bytes_is_413_and_writes_nothing(writer: httpx.Client,
                                                        tenant: str) -> None:
    response = writer.put(secret_path(tenant, "big"), json={"value": "x" * (65_536 - 1)})
    assert_problem(response, 413, "value_too_large")
    assert_problem(writer.get(secret_path(tenant, "big")), 404, "secret_not_found")


def test_object_value_size_counts_compact_json(writer: httpx.Client, tenant: str) -> None:
    # {"a":[1,2],"b":"…"} compact: 11 bytes + 2 quotes + the string
    filler = 65_536 - len('{"a":[1,2],"b":""}')
    value = {"a": [1, 2], "b": "y" * filler}
    put_value(writer, tenant, "obj", value, expect=201)
    too_big = {"a": [1, 2], "b": "y" * (filler + 1)}
    assert_problem(writer.put(secret_path(tenant, "obj"), json={"value": too_big}), 413,
                   "value_too_large")
    assert get_json(writer, secret_path(tenant, "obj"))["version"] == 1


def test_non_ascii_value_is_counted_as_utf8_bytes(writer: httpx.Client, tenant: str) -> None:
    fits = "é" * 32_767  # 2 bytes each, plus 2 quotes: 65,536 bytes
    put_value(writer, tenant, "utf8", fits, expect=201)
    assert get_json(writer, secret_path(tenant, "utf8"))["value"] == fits
    over = "é" * 32_767 + "x"  # 65,537 bytes
    assert_problem(writer.put(secret_path(tenant, "utf8"), json={"value": over}), 413,
                   "value_too_large")


def test_non_ascii_value_is_counted_unescaped(writer: httpx.Client, tenant: str) -> None:
    # "€" is 3 bytes of UTF-8 but 6 of \u20ac: 21,844 of them fit only when unescaped.
    fits = "€" * 21_844 + "x" * 2  # 65,532 + 2 + 2 quotes = 65,536
    put_value(writer, tenant, "euro", fits, expect=201)
    over = fits + "x"
    assert_problem(writer.put(secret_path(tenant, "euro"), json={"value": over}), 413,
                   "value_too_large")


def test_oversize_value_in_transaction_is_413(writer: httpx.Client, tenant: str) -> None:
    response = writer.post(f"/v1/tenants/{tenant}/transactions", json={"operations": [
        {"op": "set", "key": "small", "value": 1},
        {"op": "set", "key": "big", "value": "x" * 65_535}]})
    assert_problem(response, 413, "value_too_large")
    assert list_all_keys(writer, tenant) == []
