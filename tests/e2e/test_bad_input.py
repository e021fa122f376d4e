"""Odd but well-formed input: never a 5xx, never a write, never a lost value."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.helpers import (
    Server,
    assert_problem,
    audit_items,
    get_json,
    list_all_keys,
    put_value,
    secret_path,
)

HUGE = [2**31, 2**63, 10**30]


def _raw(client: httpx.Client, method: str, path: str, body: str) -> httpx.Response:
    return client.request(method, path, content=body.encode(),
                          headers={"Content-Type": "application/json"})


def _is_4xx_problem(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert_problem(response, response.status_code)


@pytest.mark.parametrize("number", HUGE, ids=["2^31", "2^63", "10^30"])
def test_huge_version_param_is_4xx(writer: httpx.Client, tenant: str, number: int) -> None:
    put_value(writer, tenant, "k", "v1")
    _is_4xx_problem(writer.get(secret_path(tenant, "k"), params={"version": number}))


@pytest.mark.parametrize("number", HUGE, ids=["2^31", "2^63", "10^30"])
def test_huge_rollback_version_is_4xx(writer: httpx.Client, tenant: str, number: int) -> None:
    put_value(writer, tenant, "k", "v1")
    _is_4xx_problem(writer.post(secret_path(tenant, "k", "/rollback"), json={"version": number}))
    assert len(get_json(writer, secret_path(tenant, "k", "/versions"))["items"]) == 1


@pytest.mark.parametrize("number", HUGE, ids=["2^31", "2^63", "10^30"])
def test_huge_destroy_version_is_4xx(writer: httpx.Client, tenant: str, number: int) -> None:
    put_value(writer, tenant, "k", "v1")
    _is_4xx_problem(writer.post(secret_path(tenant, "k", "/destroy"),
                                json={"versions": [number]}))
    assert get_json(writer, secret_path(tenant, "k"))["value"] == "v1"


@pytest.mark.parametrize("number", HUGE, ids=["2^31", "2^63", "10^30"])
def test_huge_if_version_is_4xx(writer: httpx.Client, tenant: str, number: int) -> None:
    response = writer.post(f"/v1/tenants/{tenant}/transactions", json={"operations": [
        {"op": "set", "key": "k", "value": 1, "if_version": number}]})
    _is_4xx_problem(response)
    assert list_all_keys(writer, tenant) == []


def test_huge_if_match_is_4xx(writer: httpx.Client, tenant: str) -> None:
    put_value(writer, tenant, "k", "v1")
    for tag in ('"999999999999999999"', '"9999999999999999999"', f'"{10**30}"'):
        _is_4xx_problem(writer.put(secret_path(tenant, "k"), json={"value": 2},
                                   headers={"If-Match": tag}))
    assert get_json(writer, secret_path(tenant, "k"))["version"] == 1


@pytest.mark.parametrize("body", [
    '{"value": 1, "metadata": {"k": "\\ud800"}}',
    '{"value": 1, "metadata": {"\\udfff": "v"}}',
    '{"value": "\\ud800"}',
    '{"value": {"\\ud800": 1}}',
], ids=["metadata-value", "metadata-key", "value", "value-member-name"])
def test_lone_surrogate_is_400_and_writes_nothing(writer: httpx.Client, tenant: str,
                                                  body: str) -> None:
    response = _raw(writer, "PUT", secret_path(tenant, "k"), body)
    assert_problem(response, 400, "invalid_request")
    assert_problem(writer.get(secret_path(tenant, "k")), 404, "secret_not_found")


def test_lone_surrogate_in_transaction_metadata_is_400(writer: httpx.Client,
                                                       tenant: str) -> None:
    body = ('{"operations": [{"op": "set", "key": "a", "value": 1},'
            ' {"op": "set", "key": "b", "value": 1, "metadata": {"k": "\\ud800"}}]}')
    assert_problem(_raw(writer, "POST", f"/v1/tenants/{tenant}/transactions", body), 400,
                   "invalid_request")
    assert list_all_keys(writer, tenant) == []


def _nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


@pytest.mark.parametrize("depth", [100, 255, 256, 300, 600])
def test_nested_value_is_refused_or_readable(writer: httpx.Client, admin: httpx.Client,
                                             tenant: str, depth: int) -> None:
    body = '{"value": ' + "[" * depth + "]" * depth + "}"
    written = _raw(writer, "PUT", secret_path(tenant, "deep"), body)
    if written.status_code >= 400:
        assert_problem(written, 400, "invalid_request")
        return
    assert written.status_code == 201, written.text
    response = writer.get(secret_path(tenant, "deep"))
    assert response.status_code == 200, (response.status_code, response.text[:300])
    assert response.json()["value"] == _nested(depth)
    assert [r["action"] for r in audit_items(admin, tenant, key="deep")] == ["write", "read"]


def test_nul_characters_round_trip(writer: httpx.Client, tenant: str) -> None:
    written = writer.put(secret_path(tenant, "k"),
                         json={"value": "a\x00b", "metadata": {"k\x00": "v\x00"}})
    assert written.status_code == 201, written.text
    body = get_json(writer, secret_path(tenant, "k"))
    assert body["value"] == "a\x00b"
    assert body["metadata"] == {"k\x00": "v\x00"}


def test_big_integers_round_trip(writer: httpx.Client, tenant: str) -> None:
    value = {"big": 10**300, "negative": -(2**70)}
    put_value(writer, tenant, "k", value, expect=201)
    assert get_json(writer, secret_path(tenant, "k"))["value"] == value


@pytest.mark.parametrize("body", ['{"value": NaN}', '{"value": Infinity}', '{"value": 1e400}'])
def test_non_finite_numbers_are_400(writer: httpx.Client, tenant: str, body: str) -> None:
    assert_problem(_raw(writer, "PUT", secret_path(tenant, "k"), body), 400, "invalid_request")
    assert_problem(writer.get(secret_path(tenant, "k")), 404, "secret_not_found")


@pytest.mark.parametrize(("name", "params"), [
    ("nul-key", {"key": "a\x00b"}),
    ("nul-actor", {"actor": "a\x00b"}),
    ("bad-action", {"action": "bogus"}),
    ("naive-time", {"since": "2026-01-01T00:00:00"}),
    ("bad-time", {"until": "soon"}),
])
def test_odd_audit_filters_are_never_5xx(admin: httpx.Client, tenant: str, name: str,
                                         params: dict[str, str]) -> None:
    response = admin.get(f"/v1/tenants/{tenant}/audit", params=params)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_problem(response, response.status_code)


def test_nul_in_listing_prefix_is_never_5xx(admin: httpx.Client, tenant: str) -> None:
    response = admin.get(f"/v1/tenants/{tenant}/secrets", params={"prefix": "a\x00"})
    assert response.status_code < 500, response.text


def test_idempotency_key_over_255_chars_is_400(writer: httpx.Client, tenant: str) -> None:
    response = writer.put(secret_path(tenant, "k"), json={"value": 1},
                          headers={"Idempotency-Key": "x" * 256})
    assert_problem(response, 400, "invalid_request")
    assert_problem(writer.get(secret_path(tenant, "k")), 404, "secret_not_found")


def test_idempotency_key_of_255_chars_is_accepted(writer: httpx.Client, tenant: str) -> None:
    response = writer.put(secret_path(tenant, "k"), json={"value": 1},
                          headers={"Idempotency-Key": "x" * 255})
    assert response.status_code == 201, response.text


def test_non_json_content_type_is_4xx_and_writes_nothing(writer: httpx.Client,
                                                         tenant: str) -> None:
    response = writer.put(secret_path(tenant, "k"), content=b"value=1",
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
    _is_4xx_problem(response)
    assert_problem(writer.get(secret_path(tenant, "k")), 404, "secret_not_found")


def test_body_that_is_not_an_object_is_400(writer: httpx.Client, tenant: str) -> None:
    for body in ("[]", '"value"', "null", "1"):
        assert_problem(_raw(writer, "PUT", secret_path(tenant, "k"), body), 400,
                       "invalid_request")


def test_nul_in_token_description_is_never_5xx(admin: httpx.Client, tenant: str) -> None:
    response = admin.post(f"/v1/tenants/{tenant}/tokens",
                          json={"role": "reader", "description": "a\x00b"})
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_problem(response, response.status_code)


def test_refused_token_creation_leaves_no_audit_row(server: Server, admin: httpx.Client,
                                                    tenant: str) -> None:
    response = admin.post(f"/v1/tenants/{tenant}/tokens",
                          json={"role": "reader", "description": "a\x00b"})
    if response.status_code != 201:
        with server.admin() as fresh:  # a 5xx may have closed the first connection
            rows = audit_items(fresh, tenant)
        assert [r for r in rows if r["action"] == "token_created"] == []


@pytest.mark.parametrize("text", ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00"])
def test_a_time_out_of_range_in_utc_is_400(writer: httpx.Client, auditor: httpx.Client,
                                            tenant: str, text: str) -> None:
    put_value(writer, tenant, "k", "v1")
    assert_problem(writer.get(secret_path(tenant, "k"), params={"at": text}), 400)
    for name in ("since", "until"):
        assert_problem(auditor.get(f"/v1/tenants/{tenant}/audit", params={name: text}), 400)


def _chunked(size: int) -> Iterator[bytes]:
    """A JSON body of about ``size`` bytes sent without a Content-Length."""
    yield b'{"value": "'
    for _ in range(size // 65536):
        yield b"x" * 65536
    yield b'"}'


@pytest.mark.parametrize(("method", "suffix"), [("PUT", "/secrets/k"), ("POST", "/transactions")])
def test_a_chunked_body_over_the_limit_is_413(writer: httpx.Client, tenant: str, method: str,
                                              suffix: str) -> None:
    response = writer.request(method, f"/v1/tenants/{tenant}{suffix}",
                              content=_chunked(2 * 1_048_576),
                              headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_problem(response, 413, "value_too_large")
    assert list_all_keys(writer, tenant) == []
