"""The typed Python client against the real server."""

from __future__ import annotations

from typing import Any

import pytest

from secrets_ledger.api.rest.client import (
    LedgerClient,
    LedgerClientError,
    SecretMissing,
    VersionConflictError,
)
from tests.e2e.helpers import Server


@pytest.fixture
def client(server: Server, tenant: str, writer_token: dict[str, Any]) -> LedgerClient:
    return LedgerClient(server.base_url, writer_token["token"], tenant)


def test_set_then_get_returns_the_value(client: LedgerClient) -> None:
    written = client.set_secret("vapi/privateApiKey", {"key": "sk-1"}, metadata={"env": "prod"})
    assert written.version == 1
    assert client.get_secret("vapi/privateApiKey") == {"key": "sk-1"}
    assert client.get_secret_or_raise("vapi/privateApiKey", version=1) == {"key": "sk-1"}


def test_get_secret_of_a_missing_key_returns_the_default(client: LedgerClient) -> None:
    assert client.get_secret("absent") is None
    assert client.get_secret("absent", default="fallback") == "fallback"


def test_get_secret_or_raise_raises_secret_missing_with_the_code(client: LedgerClient) -> None:
    with pytest.raises(SecretMissing) as raised:
        client.get_secret_or_raise("absent")
    assert raised.value.status == 404
    assert raised.value.code == "secret_not_found"


def test_a_deleted_secret_reads_as_missing(client: LedgerClient) -> None:
    client.set_secret("gone", 1)
    client.delete_secret("gone")
    assert client.get_secret("gone") is None
    with pytest.raises(SecretMissing) as raised:
        client.get_secret_or_raise("gone")
    assert raised.value.code == "secret_deleted"


def test_a_stale_if_version_raises_version_conflict_with_the_current_version(
        client: LedgerClient) -> None:
    client.set_secret("cas", "a")
    client.set_secret("cas", "b", if_version=1)
    with pytest.raises(VersionConflictError) as raised:
        client.set_secret("cas", "c", if_version=1)
    assert raised.value.current_version == 2


def test_create_only_refuses_an_existing_key(client: LedgerClient) -> None:
    client.set_secret("once", 1, create_only=True)
    with pytest.raises(VersionConflictError):
        client.set_secret("once", 2, create_only=True)


def test_an_idempotent_retry_returns_the_first_result(client: LedgerClient) -> None:
    first = client.set_secret("idem", "v", idempotency_key="retry-1")
    assert client.set_secret("idem", "v", idempotency_key="retry-1") == first


def test_list_keys_follows_every_page(client: LedgerClient) -> None:
    for i in range(7):
        client.set_secret(f"svc/k{i}", i)
    client.set_secret("other", 0)
    assert list(client.iter_keys("svc/", page_size=3)) == [f"svc/k{i}" for i in range(7)]
    assert "other" in client.list_keys()


def test_a_bad_token_raises_a_client_error_with_the_problem_code(
        server: Server, tenant: str) -> None:
    with pytest.raises(LedgerClientError) as raised:
        LedgerClient(server.base_url, "slt_not_a_token", tenant).get_secret("x")
    assert raised.value.status == 401
    assert raised.value.code == "unauthorized"
