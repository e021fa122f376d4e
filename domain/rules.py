"""Value rules of the ledger: names, keys, metadata and value size.

Rules of one front end's addressing (the REST sub-resource names a key may not end
with) belong to that front end, not here."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from secrets_ledger.domain.errors import InvalidRequest, ValueTooLarge

MAX_VALUE_BYTES = 65_536
MAX_METADATA_ENTRIES = 64
MAX_METADATA_KEY_CHARS = 128
MAX_METADATA_VALUE_CHARS = 1_024
MAX_KEY_CHARS = 256
MAX_VERSION = 2**63 - 1  # what a BIGINT holds on both backends
MAX_VALUE_DEPTH = 64  # deeper JSON is refused: no client needs it, and parsers recurse
MAX_CHANGES_PER_EVENT = 65_536  # audit positions leave this many slots per event
TRANSCODED_SHAPE = frozenset({"_type_", "_data_"})  # how eventsourcing encodes non-JSON types

_TENANT_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_KEY_RE = re.compile(r"[A-Za-z0-9._/-]{1,256}")


def check_tenant_name(name: object) -> str:
    if not isinstance(name, str) or not _valid_tenant_name(name):
        raise InvalidRequest("tenant names match ^[a-z0-9][a-z0-9-]{0,62}$")
    return name


def check_secret_key(key: object) -> str:
    if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
        raise InvalidRequest("secret keys are 1-256 characters of [A-Za-z0-9._/-]")
    if not _segments_valid(key):
        raise InvalidRequest("secret keys have no empty, '.' or '..' segment")
    return key


# Cached (bounded): a busy server checks the same few names and keys on every request.
@lru_cache(maxsize=4096)
def _valid_tenant_name(name: str) -> bool:
    return _TENANT_RE.fullmatch(name) is not None


@lru_cache(maxsize=4096)
def _segments_valid(key: str) -> bool:
    return not any(segment in ("", ".", "..") for segment in key.split("/"))


def check_unicode(text: str, what: str) -> str:
    """Text that encodes as UTF-8: no lone surrogates."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(f"{what} is not valid Unicode text") from None
    return text


def check_text(text: str, what: str) -> str:
    """Text stored in a text column of either backend: valid Unicode and no NUL."""
    if "\x00" in text:
        raise InvalidRequest(f"{what} may not contain NUL characters")
    return check_unicode(text, what)


def check_version(version: int) -> int:
    if not 1 <= version <= MAX_VERSION:
        raise InvalidRequest("versions are integers from 1")
    return version


def check_metadata(metadata: object) -> dict[str, str]:
    if not isinstance(metadata, dict):
        raise InvalidRequest("metadata is an object of string to string")
    if len(metadata) > MAX_METADATA_ENTRIES:
        raise InvalidRequest(f"metadata has at most {MAX_METADATA_ENTRIES} entries")
    for name, text in metadata.items():
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_METADATA_KEY_CHARS:
            raise InvalidRequest("metadata keys are strings of 1-128 characters")
        if not isinstance(text, str) or len(text) > MAX_METADATA_VALUE_CHARS:
            raise InvalidRequest("metadata values are strings of at most 1,024 characters")
        # Stored as JSON (NUL is escaped there), so only unencodable text is refused.
        check_unicode(name, "a metadata key")
        check_unicode(text, "a metadata value")
    if metadata.keys() == TRANSCODED_SHAPE:
        # The event store's JSON decoder would read this object back as an encoded
        # value (a date, a UUID...), or fail on it: the tenant's stream would not load.
        raise InvalidRequest("metadata with exactly the keys _type_ and _data_ is reserved")
    return dict(metadata)


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def encode_value(value: Any) -> bytes:
    """The value as compact UTF-8 JSON: what is sealed, and what the size limit counts."""
    if _depth_exceeds(value, MAX_VALUE_DEPTH):
        raise InvalidRequest(f"values nest at most {MAX_VALUE_DEPTH} levels deep")
    try:
        encoded = json.dumps(
            value, ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode("utf-8")
    except (TypeError, ValueError):
        raise InvalidRequest("the value is not a JSON value") from None
    if len(encoded) > MAX_VALUE_BYTES:
        raise ValueTooLarge(f"values are at most {MAX_VALUE_BYTES} bytes as compact JSON")
    return encoded


def decode_value(encoded: bytes) -> Any:
    return json.loads(encoded.decode("utf-8"))


def decode_metadata(stored: str | None) -> dict[str, str] | None:
    """A version's metadata from its stored JSON text (None when it has none)."""
    return json.loads(stored) if stored else None
