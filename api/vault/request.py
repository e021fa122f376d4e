"""One Vault request as the routes read it, and Vault's shapes of answers and errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from secrets_ledger.core.ledger import Ledger
from secrets_ledger.core.principals import Credential
from secrets_ledger.core.requests import RequestInfo


class VaultError(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


@dataclass(frozen=True)
class Request:
    ledger: Ledger
    caller: Credential
    tenant: str
    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes | None
    info: RequestInfo
    request_id: str

    def json(self) -> dict[str, Any]:
        if not self.body:
            return {}
        try:
            fields = orjson.loads(self.body)
        except orjson.JSONDecodeError:
            raise bad("failed to parse JSON input") from None
        if not isinstance(fields, dict):
            raise bad("the request body is not a JSON object")
        return fields

    def envelope(self, data: Any) -> dict[str, Any]:
        return {"request_id": self.request_id, "lease_id": "", "renewable": False,
                "lease_duration": 0, "data": data, "wrap_info": None, "warnings": None,
                "auth": None, "mount_type": "kv"}


def bad(message: str) -> VaultError:
    return VaultError(400, {"errors": [message]})


NOT_FOUND = VaultError(404, {"errors": []})
NO_CONTENT: tuple[int, Any] = (204, None)
UNSUPPORTED = VaultError(405, {"errors": ["unsupported operation"]})
