"""What managed secrets' commands and queries share: how a caller names a secret (a name,
or an ARN's last part), how its values are stored, and which of the view's rows are alive."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from secrets_ledger.core.ports import ManagedRow
from secrets_ledger.domain.errors import ValueTooLarge
from secrets_ledger.domain.rules import check_unicode
from secrets_ledger.domain.times import format_time

MAX_MANAGED_VALUE_BYTES = 65_536  # of a SecretString (UTF-8) or a SecretBinary
SUFFIX_CHARS = 6

ManagedValue = str | bytes
"""A secret's value as the façade knows it: text (SecretString) or bytes (SecretBinary)."""


@dataclass(frozen=True)
class SecretRef:
    """How a caller names a secret: by name, or by the last part of an ARN, which is the
    name followed by ``-`` and the incarnation's six-character suffix (a full ARN) or
    the name alone (a partial ARN)."""

    text: str
    from_arn: bool = False

    def readings(self) -> list[tuple[str, str | None]]:
        """(name, suffix required or None), in the order they are tried."""
        found: list[tuple[str, str | None]] = []
        if self.from_arn and len(self.text) > SUFFIX_CHARS + 1 and (
                self.text[-SUFFIX_CHARS - 1] == "-"):
            found.append((self.text[:-SUFFIX_CHARS - 1], self.text[-SUFFIX_CHARS:]))
        found.append((self.text, None))
        return found

    def candidates(self) -> list[str]:
        return [name for name, _ in self.readings()]


@dataclass(frozen=True)
class Written:
    """A secret as a write leaves it: its name and incarnation, and the version written
    (None when only metadata changed) with its labels."""

    name: str
    suffix: str
    client_id: str | None = None
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Deleted:
    name: str
    suffix: str
    deletion_date: str


def resolve(ref: SecretRef, rows: Sequence[ManagedRow]) -> ManagedRow | None:
    by_name = {row.name: row for row in rows}
    for name, suffix in ref.readings():
        row = by_name.get(name)
        if row is not None and (suffix is None or row.suffix == suffix):
            return row
    return None


def live_row(row: ManagedRow, at: datetime) -> bool:
    """A secret whose recovery window has passed is gone, whether or not it was purged."""
    return row.purge_after is None or row.purge_after > format_time(at)


def labels_of(labels: dict[str, int], version: int) -> tuple[str, ...]:
    return tuple(label for label, v in labels.items() if v == version)


def encode_managed(value: ManagedValue) -> bytes:
    """What is sealed: a JSON string, or ``{"$binary": base64}`` for bytes (so that a
    native reader of the history sees JSON like every other value)."""
    raw = check_unicode(value, "the value").encode("utf-8") if isinstance(value, str) else value
    if len(raw) > MAX_MANAGED_VALUE_BYTES:
        raise ValueTooLarge("secret values are at most 65,536 bytes")
    stored = value if isinstance(value, str) else {"$binary": base64.b64encode(value).decode()}
    return json.dumps(stored, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode_managed(value: object) -> ManagedValue:
    if isinstance(value, dict):
        return base64.b64decode(str(value["$binary"]))
    return str(value)
