"""Opaque, signed pagination cursors: a cursor the server did not issue is refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence

from secrets_ledger.domain.errors import InvalidRequest


class CursorCodec:
    def __init__(self, master_key: bytes) -> None:
        # A key of its own, derived so that a cursor reveals nothing about the master key.
        self._key = hmac.new(master_key, b"secrets-ledger cursor v1", hashlib.sha256).digest()

    def _mac(self, payload: str, scope: Sequence[object]) -> str:
        message = json.dumps([payload, list(scope)], default=str).encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()[:32]

    def encode(self, value: str, scope: Sequence[object]) -> str:
        payload = base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")
        return f"{payload}.{self._mac(payload, scope)}"

    def decode(self, cursor: str, scope: Sequence[object]) -> str:
        payload, _, mac = cursor.partition(".")
        if not hmac.compare_digest(mac.encode(), self._mac(payload, scope).encode()):
            raise InvalidRequest("the cursor was not issued for this listing")
        padded = payload + "=" * (-len(payload) % 4)
        return base64.urlsafe_b64decode(padded.encode()).decode()
