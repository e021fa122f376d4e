"""A small typed client for services: the problem+json errors become exceptions.

    client = LedgerClient("http://127.0.0.1:8200", token, tenant="acme")
    client.set_secret("vapi/privateApiKey", "sk-…")
    api_key = client.get_secret_or_raise("vapi/privateApiKey")
    for change in client.follow_changes("now", prefix="vapi/"):  # a cache's invalidation
        cache.pop(change.key, None)
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from types import TracebackType
from typing import Any
from urllib.parse import quote

import httpx
from httpx_sse import SSEError, connect_sse


class LedgerClientError(Exception):
    """An error answer of the ledger, carrying its stable ``code`` and extra members."""

    def __init__(self, status: int, code: str, detail: str, extra: dict[str, Any]) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status, self.code, self.detail, self.extra = status, code, detail, extra


class SecretMissing(LedgerClientError):
    """The secret (or its tenant) does not exist, or no longer has a readable value."""


class VersionConflictError(LedgerClientError):
    @property
    def current_version(self) -> int | None:
        value = self.extra.get("current_version")
        return int(value) if value is not None else None


_MISSING_CODES = {"secret_not_found", "secret_deleted", "version_not_found",
                  "version_destroyed", "tenant_not_found", "tenant_shredded"}


def _error(status: int, body: dict[str, Any], reason: str) -> LedgerClientError:
    body = dict(body)
    code = str(body.pop("code", "unknown"))
    detail = str(body.pop("detail", reason))
    kind = (SecretMissing if code in _MISSING_CODES else
            VersionConflictError if code == "version_conflict" else LedgerClientError)
    return kind(status, code, detail, body)


@dataclass(frozen=True)
class FeedChange:
    """One change of the feed (``follow_changes``): what changed, never a value."""

    position: int  # its cursor: the feed resumes after it
    tenant: str
    at: str
    action: str
    key: str | None
    version: int | None
    actor: str
    request_id: str
    stream_version: int  # gap-free per tenant
    log_index: int | None  # its record's leaf in the tenant's transparency log


_FEED_FIELDS = tuple(field.name for field in fields(FeedChange))


def _feed_change(data: dict[str, Any]) -> FeedChange:
    """The change an event carries; fields a newer server adds are left out, not fatal."""
    return FeedChange(**{name: data[name] for name in _FEED_FIELDS})


@dataclass(frozen=True)
class Written:
    key: str
    version: int
    created_at: str


class LedgerClient:
    def __init__(self, base_url: str, token: str, tenant: str, *, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.tenant = tenant
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport,
                                  headers={"Authorization": f"Bearer {token}"})

    def _path(self, key: str = "") -> str:
        base = f"/v1/tenants/{quote(self.tenant, safe='')}/secrets"
        return f"{base}/{quote(key, safe='/')}" if key else base

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = self._http.request(method, url, **kwargs)
        if response.is_success:
            return response
        try:
            body = response.json()
        except ValueError:
            body = {}
        raise _error(response.status_code, body if isinstance(body, dict) else {},
                     response.reason_phrase)

    def get_secret_or_raise(self, key: str, *, version: int | None = None) -> Any:
        params = {"version": version} if version is not None else None
        return self._send("GET", self._path(key), params=params).json()["value"]

    def get_secret(self, key: str, default: Any = None) -> Any:
        """The current value, or ``default`` when the secret has none."""
        try:
            return self.get_secret_or_raise(key)
        except SecretMissing:
            return default

    def set_secret(self, key: str, value: Any, *, metadata: dict[str, str] | None = None,
                   if_version: int | None = None, create_only: bool = False,
                   idempotency_key: str | None = None) -> Written:
        headers: dict[str, str] = {}
        if if_version is not None:
            headers["If-Match"] = f'"{if_version}"'
        if create_only:
            headers["If-None-Match"] = "*"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        body: dict[str, Any] = {"value": value}
        if metadata is not None:
            body["metadata"] = metadata
        answer = self._send("PUT", self._path(key), json=body, headers=headers).json()
        return Written(answer["key"], answer["version"], answer["created_at"])

    def delete_secret(self, key: str) -> None:
        self._send("DELETE", self._path(key))

    def iter_keys(self, prefix: str = "", page_size: int = 100) -> Iterator[str]:
        params: dict[str, Any] = {"prefix": prefix, "limit": page_size}
        while True:
            page = self._send("GET", self._path(), params=params).json()
            yield from (item["key"] for item in page["items"])
            if page["next_cursor"] is None:
                return
            params["cursor"] = page["next_cursor"]

    def list_keys(self, prefix: str = "") -> list[str]:
        return list(self.iter_keys(prefix))

    def follow_changes(self, after: str = "0", *, prefix: str = "",
                       actions: Sequence[str] = (), retry_delay: float = 1.0,
                       idle_timeout: float = 60.0) -> Iterator[FeedChange]:
        """Every change of the tenant after the cursor ``after`` (``"now"``: from now on),
        in commit order, for as long as the caller iterates: metadata, never a value.

        A dropped stream (a restart, a slow-subscriber cut-off, the network, nothing
        heard for ``idle_timeout`` seconds) is resumed from the last cursor seen, so each
        change comes exactly once. A refusal (a revoked token, say) is raised."""
        cursor = after
        params: dict[str, Any] = {"prefix": prefix, "action": list(actions)}
        path = f"/v1/tenants/{quote(self.tenant, safe='')}/changes"
        timeout = httpx.Timeout(self._http.timeout.connect, read=idle_timeout)
        while True:
            try:
                with connect_sse(self._http, "GET", path, params=params, timeout=timeout,
                                 headers={"Last-Event-ID": cursor}) as source:
                    if not source.response.is_success:
                        source.response.read()
                        if source.response.status_code != 503:
                            raise _error(source.response.status_code, source.response.json(),
                                         source.response.reason_phrase)
                    for event in source.iter_sse():
                        if not event.data:  # the stream's first block: only a retry delay
                            continue
                        if event.event == "message":
                            change = _feed_change(event.json())
                            cursor = event.id
                            yield change
                        elif event.event == "heartbeat":
                            cursor = event.id
                        elif event.event == "error" and event.json().get("code") not in (
                                "unavailable", "overloaded"):
                            raise _error(200, event.json(), "stream ended")
            except (httpx.TransportError, SSEError):
                pass  # resumed below, from the last cursor
            time.sleep(retry_delay)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LedgerClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()
