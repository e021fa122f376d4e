"""The Vault façade's ASGI app: ``/v1/sys/...`` and ``/v1/<mount>/<kv v2 path>``, with
Vault's envelope and its errors (``{"errors": [...]}``) on every failure.

It authenticates (``X-Vault-Token`` is a ledger token; ``X-Vault-Namespace`` names the
tenant: optional with a tenant's token and then equal to its tenant, required with an
admin token) and translates; the core authorizes and acts.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson
from prometheus_client import CollectorRegistry, Counter

from secrets_ledger.api.vault.kv_routes import route
from secrets_ledger.api.vault.request import Request, VaultError
from secrets_ledger.core.ledger import Ledger
from secrets_ledger.core.principals import BearerToken
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.domain.errors import LedgerError

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1 << 20
MAX_PATH_CHARS = 1024
PERMISSION_DENIED = "permission denied"
UNAUTHENTICATED = {"sys/health": {"initialized": True, "sealed": False, "standby": False,
                                  "performance_standby": False, "version": "1.17.0+ledger",
                                  "cluster_name": "secrets-ledger"},
                   "sys/seal-status": {"type": "shamir", "initialized": True, "sealed": False,
                                       "t": 1, "n": 1, "progress": 0, "version": "1.17.0",
                                       "storage_type": "secrets-ledger"}}


def status_of(error: LedgerError) -> tuple[int, list[str]]:
    """Vault's status and errors for a refusal of the core."""
    code = error.code
    if code in ("unauthorized", "forbidden", "tenant_not_found"):
        return 403, [PERMISSION_DENIED]
    if code in ("secret_not_found", "version_not_found", "version_destroyed"):
        return 404, []
    if code in ("unavailable", "overloaded"):
        return 503, [error.detail]
    return 400, [error.detail]


class VaultFacade:
    def __init__(self, ledger: Ledger, registry: CollectorRegistry,
                 max_body: int = MAX_BODY_BYTES) -> None:
        self.ledger = ledger
        self.max_body = max_body
        self.requests = Counter("ledger_vault_requests_total",
                                "Vault façade requests by method and status",
                                ["method", "status"], registry=registry)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request_id = str(uuid.uuid4())
        method = str(scope.get("method", "GET"))
        try:
            status, body = await self._answer(scope, receive, method, request_id)
        except VaultError as error:
            status, body = error.status, error.body
        except LedgerError as error:
            status, errors = status_of(error)
            body = {"errors": errors}
        except Exception as error:  # never a trace or a value on the wire, or in the log
            log.error("unexpected %s in Vault façade request %s", type(error).__name__,
                      request_id)
            status, body = 500, {"errors": ["internal error"]}
        payload = b"" if body is None else orjson.dumps(body)
        headers = [(b"cache-control", b"no-store")]
        if body is not None:
            headers.append((b"content-type", b"application/json"))
        headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
        self.requests.labels(method, str(status)).inc()

    async def _answer(self, scope: dict[str, Any], receive: Any, method: str,
                      request_id: str) -> tuple[int, Any]:
        path = unquote(str(scope.get("path", "")))
        if not path.startswith("/v1/"):
            raise VaultError(404, {"errors": []})
        path = path[len("/v1/"):]
        if len(path) > MAX_PATH_CHARS or any(c < " " or c == "\x7f" for c in path):
            # No stored name may hold a control character (NUL is no text to PostgreSQL).
            raise VaultError(400, {"errors": ["invalid path"]})
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if method == "GET" and query.get("list") == ["true"]:
            method = "LIST"
        if path.rstrip("/") in UNAUTHENTICATED and method == "GET":
            return 200, UNAUTHENTICATED[path.rstrip("/")]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        body = await self._body(receive, headers)
        tenant, principal = await self._tenant(headers)
        request = Request(self.ledger, principal, tenant, method, path, query, body,
                          RequestInfo(request_id, size=len(body or b"")), request_id)
        return await route(request)

    async def _tenant(self, headers: dict[str, str]) -> tuple[str, Any]:
        token = headers.get("x-vault-token", "").strip()
        if not token:
            raise VaultError(403, {"errors": [PERMISSION_DENIED]})
        credential = BearerToken.of(token)
        own = await self.ledger.tenant_of(credential)
        namespace = headers.get("x-vault-namespace", "").strip().strip("/")
        if own is not None:
            if namespace and namespace != own:
                raise VaultError(403, {"errors": [PERMISSION_DENIED]})
            return own, credential
        if not namespace:
            raise VaultError(400, {"errors": [
                "an admin token works in one tenant: name it in X-Vault-Namespace"]})
        return namespace, credential

    async def _body(self, receive: Any, headers: dict[str, str]) -> bytes:
        declared = headers.get("content-length", "0")
        if declared.isdigit() and int(declared) > self.max_body:
            raise VaultError(413, {"errors": ["request body too large"]})
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise VaultError(400, {"errors": ["the client went away"]})
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise VaultError(413, {"errors": ["request body too large"]})
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
