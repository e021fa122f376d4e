"""Pages of a listing: a limit, and opaque, signed cursors (a cursor the server did not
issue, or issued for another listing, is refused)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from secrets_ledger.domain.errors import InvalidRequest

Item = TypeVar("Item")


@dataclass(frozen=True)
class Page(Generic[Item]):
    items: list[Item]
    next_cursor: str | None


def check_limit(limit: int) -> None:
    if not 1 <= limit <= 1000:
        raise InvalidRequest("limit is 1-1000")


def check_prefix(prefix: str) -> None:
    if prefix and not all(c.isascii() and (c.isalnum() or c in "._/-") for c in prefix):
        raise InvalidRequest("a prefix uses the characters of secret keys: [A-Za-z0-9._/-]")


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
