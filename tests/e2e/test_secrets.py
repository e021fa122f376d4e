"""Single secrets: writes, reads, preconditions, idempotency, history and its states."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import (
    assert_problem,
    audit_items,
    create_tenant,
    get_json,
    list_all_keys,
    put_value,
    secret_path,
    verify,
)


def _versions(client: httpx.Client, tenant: str, key: str) -> dict[str, Any]:
    return get_json(client, secret_path(tenant, key, "/versions"))


def _states(client: httpx.Client, tenant: str, key: str) -> dict[int, str]:
    return {i["version"]: i["state"] for i in _versions(client, tenant, key)["items"]}


def _delete(client: httpx.Client, tenant: str, key: str, **headers: str) -> None:
    response = client.delete(secret_path(tenant, key), headers=headers)
    assert response.status_code == 204, response.text
    assert response.content == b""


def _shift(stamp: str, seconds: float) -> str:
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")) + timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ---- writing and reading ----------------------------------------------------------------


def test_put_new_key_is_201_then_200_with_etag(writer: httpx.Client, tenant: str) -> None:
    first = writer.put(secret_path(tenant, "db/password"), json={"value": "one"})
    assert first.status_code == 201, first.text
    assert first.headers["ETag"] == '"1"'
    body = first.json()
    assert body["key"] == "db/password"
    assert body["version"] == 1
    assert isinstance(body["created_at"], str)
    second = writer.put(secret_path(tenant, "db/password"), json={"value": "two"})
    assert second.status_code == 200, second.text
    assert second.headers["ETag"] == '"2"'
    assert second.json()["version"] == 2


def test_get_returns_value_metadata_and_created_by(writer: httpx.Client,
                                                   writer_token: dict[str, Any],
                                                   tenant: str) -> None:
    value = {"user": "app", "password": "p@ss", "ports": [5432, 6432], "tls": True}
    metadata = {"owner": "team-a", "rotation": "", "ticket": "SEC-1"}
    put = writer.put(secret_path(tenant, "db/creds"),
                     json={"value": value, "metadata": metadata})
    assert put.status_code == 201, put.text
    response = writer.get(secret_path(tenant, "db/creds"))
    assert response.status_code == 200, response.text
    assert response.headers["ETag"] == '"1"'
    body = response.json()
    assert body == {"key": "db/creds", "version": 1, "value": value, "metadata": metadata,
                    "created_at": put.json()["created_at"],
                    "created_by": writer_token["token_id"]}


@pytest.mark.parametrize("value", [
    None, 0, -17, 3.25, True, False, "", "plain", "ünïcødé € 😀", [], {},
    [1, "two", None, {"three": [3]}], {"nested": {"deeper": {"deepest": [True, None]}}},
], ids=lambda v: type(v).__name__)
def test_any_json_value_round_trips(writer: httpx.Client, tenant: str, value: Any) -> None:
    put_value(writer, tenant, "any", value, expect=201)
    assert get_json(writer, secret_path(tenant, "any"))["value"] == value


def test_metadata_belongs_to_the_version(writer: httpx.Client, tenant: str) -> None:
    path = secret_path(tenant, "api/key")
    assert writer.put(path, json={"value": 1, "metadata": {"env": "prod"}}).status_code == 201
    assert writer.put(path, json={"value": 2}).status_code == 200
    assert get_json(writer, path)["metadata"] in (None, {})
    assert get_json(writer, path, version=1)["metadata"] == {"env": "prod"}
    assert writer.put(path, json={"value": 3, "metadata": {"env": "dev"}}).status_code == 200
    assert get_json(writer, path)["metadata"] == {"env": "dev"}
    assert get_json(writer, path, version=1)["metadata"] == {"env": "prod"}


@pytest.mark.parametrize("metadata", [
    {"k": 1}, {"": "v"}, {"k" * 129: "v"}, {"k": "v" * 1025},
    {f"k{i}": "v" for i in range(65)}, ["k", "v"], "k=v",
    {"_type_": "datetime_iso", "_data_": "2026-01-01T00:00:00+00:00"},
    {"_type_": "uuid_hex", "_data_": "zz"},
], ids=["int-value", "empty-key", "long-key", "long-value", "65-entries", "list", "string",
        "encoded-date-shape", "encoded-uuid-shape"])
def test_bad_metadata_is_400_and_writes_nothing(writer: httpx.Client, tenant: str,
                                                metadata: Any) -> None:
    response = writer.put(secret_path(tenant, "m"), json={"value": 1, "metadata": metadata})
    assert_problem(response, 400, "invalid_request")
    assert_problem(writer.get(secret_path(tenant, "m")), 404, "secret_not_found")


def test_metadata_naming_one_of_the_encoding_keys_is_accepted(writer: httpx.Client,
                                                              tenant: str) -> None:
    for metadata in ({"_type_": "uuid_hex", "_data_": "zz", "owner": "ops"}, {"_type_": "x"}):
        response = writer.put(secret_path(tenant, "m"), json={"value": 1, "metadata": metadata})
        assert response.status_code in (200, 201), response.text
        assert get_json(writer, secret_path(tenant, "m"))["metadata"] == metadata


def test_metadata_at_the_limits_is_accepted(writer: httpx.Client, tenant: str) -> None:
    metadata = {f"{i:03d}" + "k" * 125: "v" * 1024 for i in range(64)}
    response = writer.put(secret_path(tenant, "m"), json={"value": 1, "metadata": metadata})
    assert response.status_code == 201, response.text
    assert get_json(writer, secret_path(tenant, "m"))["metadata"] == metadata


# ---- preconditions ----------------------------------------------------------------------


def test_if_match_current_version_writes(writer: httpx.Client, tenant: str) -> None:
    put_value(writer, tenant, "k", "a", expect=201)
    response = writer.put(secret_path(tenant, "k"), json={"value": "b"},
                          headers={"If-Match": '"1"'})
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2
    assert response.headers["ETag"] == '"2"'


def test_if_match_stale_version_is_412_version_conflict(writer: httpx.Client,
                                                        tenant: str) -> None:
    put_value(writer, tenant, "k", "a", expect=201)
    put_value(writer, tenant, "k", "b", expect=200)
    response = writer.put(secret_path(tenant, "k"), json={"value": "c"},
                          headers={"If-Match": '"1"'})
    problem = assert_problem(response, 412, "version_conflict")
    assert problem["current_version"] == 2
    assert problem["deleted"] is False
    assert get_json(writer, secret_path(tenant, "k"))["value"] == "b"
    assert len(_versions(writer, tenant, "k")["items"]) == 2


def test_if_match_on_absent_key_is_412_with_null_version(writer: httpx.Client,
                                                         tenant: str) -> None:
    response = writer.put(secret_path(tenant, "k"), json={"value": "a"},
                          headers={"If-Match": '"1"'})
    problem = assert_problem(response, 412, "version_conflict")
    assert problem["current_version"] is None
    assert problem["deleted"] is False
    assert_problem(writer.get(secret_path(tenant, "k")), 404, "secret_not_found")


def test_if_match_on_deleted_key_matches_its_latest_version(writer: httpx.Client,
                                                            tenant: str) -> None:
    put_value(writer, tenant, "k", "a", expect=201)
    _delete(writer, tenant, "k")
    response = writer.put(secret_path(tenant, "k"), json={"value": "b"},
                          headers={"If-Match": '"1"'})
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2
    assert get_json(writer, secret_path(tenant, "k"))["value"] == "b"


def test_if_match_conflict_on_deleted_key_reports_deleted(writer: httpx.Client,
                                                          tenant: str) -> None:
    put_value(writer, tenant, "k", "a", expect=201)
    _delete(writer, tenant, "k")
    response = writer.put(secret_path(tenant, "k"), json={"value": "b"},
                          headers={"If-Match": '"5"'})
    problem = assert_problem(response, 412, "version_conflict")
    assert problem["current_version"] == 1
    assert problem["deleted"] is True


def test_if_match_star_writes_only_a_live_key(writer: httpx.Client, tenant: str) -> None:
    star = {"If-Match": "*"}
    absent = writer.put(secret_path(tenant, "k"), json={"value": 0}, headers=star)
    problem = assert_problem(absent, 412, "version_conflict")
    assert problem["current_version"] is None
    put_value(writer, tenant, "k", 1, expect=201)
    live = writer.put(secret_path(tenant, "k"), json={"value": 2}, headers=star)
    assert live.status_code == 200, live.text
    assert live.json()["version"] == 2
    _delete(writer, tenant, "k")
    deleted = writer.put(secret_path(tenant, "k"), json={"value": 3}, headers=star)
    problem = assert_problem(deleted, 412, "version_conflict")
    assert problem["current_version"] == 2
    assert problem["deleted"] is True


def test_if_none_match_star_writes_only_absent_or_deleted(writer: httpx.Client,
                                                          tenant: str) -> None:
    star = {"If-None-Match": "*"}
    absent = writer.put(secret_path(tenant, "k"), json={"value": 1}, headers=star)
    assert absent.status_code == 201, absent.text
    live = writer.put(secret_path(tenant, "k"), json={"value": 2}, headers=star)
    problem = assert_problem(live, 412, "version_conflict")
    assert problem["current_version"] == 1
    assert problem["deleted"] is False
    _delete(writer, tenant, "k")
    deleted = writer.put(secret_path(tenant, "k"), json={"value": 3}, headers=star)
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["version"] == 2


@pytest.mark.parametrize("tag", ["1", '"abc"', '""', '"-1"', '"1', "1\"", '"1.5"'])
def test_malformed_if_match_is_400_and_writes_nothing(writer: httpx.Client, tenant: str,
                                                      tag: str) -> None:
    put_value(writer, tenant, "k", "a", expect=201)
    response = writer.put(secret_path(tenant, "k"), json={"value": "b"},
                          headers={"If-Match": tag})
    assert_problem(response, 400, "invalid_request")
    assert len(_versions(writer, tenant, "k")["items"]) == 1


def test_delete_with_stale_if_match_is_412(writer: httpx.Client, tenant: str) -> None:
    put_value(writer, tenant, "k", "a", expect=201)
    put_value(writer, tenant, "k", "b", expect=200)
    response = writer.delete(secret_path(tenant, "k"), headers={"If-Match": '"1"'})
    problem = assert_problem(response, 412, "version_conflict")
    assert problem["current_version"] == 2
    assert get_json(writer, secret_path(tenant, "k"))["value"] == "b"
    _delete(writer, tenant, "k", **{"If-Match": '"2"'})


# ---- idempotency ------------------------------------------------------------------------


def test_idempotent_put_replay_returns_first_result_and_writes_nothing(
        writer: httpx.Client, admin: httpx.Client, tenant: str) -> None:
    headers = {"Idempotency-Key": f"idem-{uuid.uuid4().hex}"}
    first = writer.put(secret_path(tenant, "k"), json={"value": "a"}, headers=headers)
    assert first.status_code == 201, first.text
    events = verify(admin, tenant)["events"]
    again = writer.put(secret_path(tenant, "k"), json={"value": "a"}, headers=headers)
    assert again.status_code == first.status_code
    assert again.json() == first.json()
    assert again.headers["ETag"] == first.headers["ETag"]
    assert len(_versions(writer, tenant, "k")["items"]) == 1
    assert len(audit_items(admin, tenant, key="k", action="write")) == 1
    assert verify(admin, tenant)["events"] == events


def test_idempotent_replay_after_a_later_write_returns_the_first_result(
        writer: httpx.Client, tenant: str) -> None:
    headers = {"Idempotency-Key": f"idem-{uuid.uuid4().hex}"}
    first = writer.put(secret_path(tenant, "k"), json={"value": "a"}, headers=headers)
    put_value(writer, tenant, "k", "b", expect=200)
    again = writer.put(secret_path(tenant, "k"), json={"value": "a"}, headers=headers)
    assert again.json() == first.json()
    assert get_json(writer, secret_path(tenant, "k"))["value"] == "b"
    assert len(_versions(writer, tenant, "k")["items"]) == 2


def test_idempotency_key_with_different_body_is_409(writer: httpx.Client, tenant: str) -> None:
    headers = {"Idempotency-Key": f"idem-{uuid.uuid4().hex}"}
    assert writer.put(secret_path(tenant, "k"), json={"value": "a"},
                      headers=headers).status_code == 201
    reused = writer.put(secret_path(tenant, "k"), json={"value": "b"}, headers=headers)
    assert_problem(reused, 409, "idempotency_key_reused")
    other_key = writer.put(secret_path(tenant, "other"), json={"value": "a"}, headers=headers)
    assert_problem(other_key, 409, "idempotency_key_reused")
    assert get_json(writer, secret_path(tenant, "k"))["value"] == "a"
    assert len(_versions(writer, tenant, "k")["items"]) == 1


def test_idempotency_key_is_scoped_to_the_tenant(admin: httpx.Client, tenant: str) -> None:
    other = create_tenant(admin)
    headers = {"Idempotency-Key": f"idem-{uuid.uuid4().hex}"}
    for name in (tenant, other):
        response = admin.put(secret_path(name, "k"), json={"value": name}, headers=headers)
        assert response.status_code == 201, response.text
    assert get_json(admin, secret_path(tenant, "k"))["value"] == tenant
    assert get_json(admin, secret_path(other, "k"))["value"] == other


# ---- versions and points in time --------------------------------------------------------


def test_get_version_param_returns_that_version(writer: httpx.Client, tenant: str) -> None:
    for value in ("v1", "v2", "v3"):
        put_value(writer, tenant, "k", value)
    response = writer.get(secret_path(tenant, "k"), params={"version": 2})
    assert response.status_code == 200, response.text
    assert response.json()["value"] == "v2"
    assert response.json()["version"] == 2
    assert response.headers["ETag"] == '"2"'


def test_get_unknown_version_is_404_version_not_found(writer: httpx.Client,
                                                      tenant: str) -> None:
    put_value(writer, tenant, "k", "v1")
    response = writer.get(secret_path(tenant, "k"), params={"version": 9})
    assert_problem(response, 404, "version_not_found")


def test_get_absent_key_is_404_secret_not_found(writer: httpx.Client, tenant: str) -> None:
    assert_problem(writer.get(secret_path(tenant, "nothing/here")), 404, "secret_not_found")


def test_get_at_time_returns_the_version_current_then(writer: httpx.Client,
                                                      tenant: str) -> None:
    first = put_value(writer, tenant, "k", "v1")
    second = put_value(writer, tenant, "k", "v2")
    put_value(writer, tenant, "k", "v3")
    at_first = get_json(writer, secret_path(tenant, "k"), at=first["created_at"])
    assert (at_first["version"], at_first["value"]) == (1, "v1")
    between = get_json(writer, secret_path(tenant, "k"), at=_shift(second["created_at"], -1e-6))
    assert (between["version"], between["value"]) == (1, "v1")
    at_second = get_json(writer, secret_path(tenant, "k"), at=second["created_at"])
    assert (at_second["version"], at_second["value"]) == (2, "v2")


def test_get_at_before_creation_is_404(writer: httpx.Client, tenant: str) -> None:
    first = put_value(writer, tenant, "k", "v1")
    response = writer.get(secret_path(tenant, "k"),
                          params={"at": _shift(first["created_at"], -1e-3)})
    assert_problem(response, 404, "secret_not_found")


def test_get_at_while_deleted_is_410(writer: httpx.Client, admin: httpx.Client,
                                     tenant: str) -> None:
    put_value(writer, tenant, "k", "v1")
    _delete(writer, tenant, "k")
    [deletion] = audit_items(admin, tenant, key="k", action="delete")
    put_value(writer, tenant, "k", "v2")
    response = writer.get(secret_path(tenant, "k"), params={"at": deletion["at"]})
    assert_problem(response, 410, "secret_deleted")
    assert get_json(writer, secret_path(tenant, "k"))["value"] == "v2"


# ---- delete and undelete ----------------------------------------------------------------


def test_delete_is_204_then_get_is_410_secret_deleted(writer: httpx.Client,
                                                      tenant: str) -> None:
    put_value(writer, tenant, "k", "v1")
    _delete(writer, tenant, "k")
    assert_problem(writer.get(secret_path(tenant, "k")), 410, "secret_deleted")


def test_deleted_key_is_left_out_of_listing(writer: httpx.Client, tenant: str) -> None:
    put_value(writer, tenant, "a", 1)
    put_value(writer, tenant, "b", 2)
    _delete(writer, tenant, "a")
    assert [i["key"] for i in list_all_keys(writer, tenant)] == ["b"]


def test_deleted_current_version_shows_state_deleted(writer: httpx.Client, tenant: str) -> None:
    put_value(writer, tenant, "k", "v1")
    put_value(writer, tenant, "k", "v2")
    _delete(writer, tenant, "k")
    listing = _versions(writer, tenant, "k")
    assert listing["current_version"] == 2
    assert {i["version"]: i["state"] for i in listing["items"]} == {1: "active", 2: "deleted"}


def test_delete_of_deleted_key_is_204_and_records_nothing(writer: httpx.Client,
                                                          admin: httpx.Client,
                                                          tenant: str) -> None:
    put_value(writer, tenant, "k", "v1")
    _delete(writer, tenant, "k")
    events = verify(admin, tenant)["events"]
    _delete(writer, tenant, "k")
    assert len(audit_items(admin, tenant, key="k", action="delete")) == 1
    assert verify(admin, tenant)["events"] == events


def test_delete_of_absent_key_is_404_secret_not_found(writer: httpx.Client, tenant: str) -> None:
    assert_problem(writer.delete(secret_path(tenant, "never")), 404, "secret_not_found")


def test_undelete_makes_the_key_live_again(writer: httpx.Client, tenant: str) -> None:
    put_value(writer, tenant, "k", "v1")
    put_value(writer, tenant, "k", "v2")
    _delete(writer, tenant, "k")
    response = writer.post(secret_path(tenant, "k", "/undelete"))
    assert response.status_code == 200, response.text
    assert response.json() == {"key": "k", "version": 2}
    assert get_json(writer, secret_path(tenant, "k"))["value"] == "v2"
    assert _states(writer, tenant, "k") == {1: "active", 2: "active"}
    assert [i["key"] for i in list_all_keys(writer, tenant)] == ["k"]


def test_undelete_response_carries_etag(writer: httpx.Client, tenant: str) -> None:
    put_value(writer, tenant, "k", "v1")
    _delete(writer, tenant, "k")
    response = writer.post(secret_path(tenant, "k", "/undelete"))
    assert response.status_code == 200, response.text
    assert response.headers.get("ETag") == '"1"'


def test_put_to_deleted_key_writes_the_next_version(writer: httpx.Client, tenant: str) -> None:
    put_value(writer, tenant, "k", "v1")
    _delete(writer, tenant, "k")
    response = writer.put(secret_path(tenant, "k"), json={"value": "v2"})
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 2
    assert get_json(writer, secret_path(tenant, "k"))["value"] == "v2"
    assert [i["key"] for i in list_all_keys(writer, tenant)] == ["k"]
    assert _states(writer, tenant, "k")[2] == "active"


# ---- rollback and destroy ---------------------------------------------------------------


def test_rollback_writes_a_new_version_with_the_old_value(writer: httpx.Client,
                                                          tenant: str) -> None:
    put_value(writer, tenant, "k", {"pw": "old"})
    put_value(writer, tenant, "k", {"pw": "new"})
    response = writer.post(secret_path(tenant, "k", "/rollback"), json={"version": 1})
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 3
    current = get_json(writer, secret_path(tenant, "k"))
    assert (current["version"], current["value"]) == (3, {"pw": "old"})
    assert get_json(writer, secret_path(tenant, "k"), version=2)["value"] == {"pw": "new"}


def test_rollback_on_deleted_key_is_410_secret_deleted(writer: httpx.Client,
                                                       tenant: str) -> None:
    put_value(writer, tenant, "k", "v1")
    put_value(writer, tenant, "k", "v2")
    _delete(writer, tenant, "k")
    response = writer.post(secret_path(tenant, "k", "/rollback"), json={"version": 1})
    assert_problem(response, 410, "secret_deleted")
    assert len(_versions(writer, tenant, "k")["items"]) == 2


def test_rollback_to_destroyed_version_is_410_version_destroyed(writer: httpx.Client,
                                                                tenant: str) -> None:
    put_value(writer, tenant, "k", "v1")
    put_value(writer, tenant, "k", "v2")
    destroyed = writer.post(secret_path(tenant, "k", "/destroy"), json={"versions": [1]})
    assert destroyed.status_code == 200, destroyed.text
    response = writer.post(secret_path(tenant, "k", "/rollback"), json={"version": 1})
    assert_problem(response, 410, "version_destroyed")
    assert len(_versions(writer, tenant, "k")["items"]) == 2


def test_rollback_to_unknown_version_is_404(writer: httpx.Client, tenant: str) -> None:
    put_value(writer, tenant, "k", "v1")
    response = writer.post(secret_path(tenant, "k", "/rollback"), json={"version": 7})
    assert_problem(response, 404, "version_not_found")


def test_destroyed_version_value_is_410_version_destroyed(writer: httpx.Client,
                                                          tenant: str) -> None:
    put_value(writer, tenant, "k", "v1")
    put_value(writer, tenant, "k", "v2")
    response = writer.post(secret_path(tenant, "k", "/destroy"), json={"versions": [1]})
    assert response.status_code == 200, response.text
    old = writer.get(secret_path(tenant, "k"), params={"version": 1})
    assert_problem(old, 410, "version_destroyed")
    assert get_json(writer, secret_path(tenant, "k"))["value"] == "v2"


def test_destroyed_version_stays_in_versions_listing(writer: httpx.Client,
                                                     writer_token: dict[str, Any],
                                                     tenant: str) -> None:
    first = put_value(writer, tenant, "k", "v1")
    put_value(writer, tenant, "k", "v2")
    before = _versions(writer, tenant, "k")["items"][0]
    assert writer.post(secret_path(tenant, "k", "/destroy"),
                       json={"versions": [1]}).status_code == 200
    listing = _versions(writer, tenant, "k")
    assert listing["current_version"] == 2
    [one, two] = listing["items"]
    assert one == {**before, "state": "destroyed"}
    assert one["created_at"] == first["created_at"]
    assert one["created_by"] == writer_token["token_id"]
    assert two["state"] == "active"


def test_destroyed_current_version_is_410(writer: httpx.Client, tenant: str) -> None:
    put_value(writer, tenant, "k", "v1")
    assert writer.post(secret_path(tenant, "k", "/destroy"),
                       json={"versions": [1]}).status_code == 200
    assert_problem(writer.get(secret_path(tenant, "k")), 410, "version_destroyed")


def test_versions_listing_describes_every_version(writer: httpx.Client,
                                                  writer_token: dict[str, Any],
                                                  tenant: str) -> None:
    written = [put_value(writer, tenant, "svc/token", f"v{i}") for i in range(1, 4)]
    response = writer.get(secret_path(tenant, "svc/token", "/versions"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["key"] == "svc/token"
    assert body["current_version"] == 3
    assert body["items"] == [
        {"version": w["version"], "created_at": w["created_at"],
         "created_by": writer_token["token_id"], "state": "active"} for w in written]
    assert "v1" not in response.text


def test_versions_of_absent_key_is_404(writer: httpx.Client, tenant: str) -> None:
    assert_problem(writer.get(secret_path(tenant, "nope", "/versions")), 404,
                   "secret_not_found")


def test_rollback_of_an_absent_key_is_secret_not_found(writer: httpx.Client,
                                                       tenant: str) -> None:
    response = writer.post(secret_path(tenant, "never", "/rollback"), json={"version": 1})
    assert_problem(response, 404, "secret_not_found")


def test_rollback_on_a_deleted_key_is_secret_deleted_even_to_a_destroyed_version(
        writer: httpx.Client, tenant: str) -> None:
    put_value(writer, tenant, "k", "one", expect=201)
    put_value(writer, tenant, "k", "two", expect=200)
    assert writer.post(secret_path(tenant, "k", "/destroy"),
                       json={"versions": [1]}).status_code == 200
    assert writer.delete(secret_path(tenant, "k")).status_code == 204
    response = writer.post(secret_path(tenant, "k", "/rollback"), json={"version": 1})
    assert_problem(response, 410, "secret_deleted")
