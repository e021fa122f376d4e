"""ListSecrets' filters as Secrets Manager applies them.

``name``, ``tag-key`` and ``tag-value`` match a prefix of the attribute, case-sensitively;
``description``, ``owning-service`` and ``all`` split the filter and the attributes into
words (at one kind of separator, then at capitals) and match each filter word as a
prefix of some attribute word, case-insensitively. A value starting ``!`` negates. Keys
are ANDed; the values of one key are ORed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from secrets_ledger.api.aws.errors import AwsError, invalid_parameter
from secrets_ledger.core.ports import ManagedRow

OWNING_SERVICE_TAG = "aws:secretsmanager:owningService"
_SEPARATORS = "/-_+=.@"
_CAPITALISED = re.compile(r"([^a-z][a-z]+)")

Filter = tuple[str, list[str]]


def check_filters(filters: Any) -> list[Filter]:
    if not isinstance(filters, list) or len(filters) > 10:
        raise invalid_parameter("Invalid Filters.")
    checked: list[Filter] = []
    for n, item in enumerate(filters, start=1):
        key = item.get("Key") if isinstance(item, dict) else None
        values = item.get("Values") if isinstance(item, dict) else None
        if not isinstance(key, str):
            raise invalid_parameter("Invalid filter key")
        if key not in _ATTRIBUTES:
            raise AwsError("ValidationException",
                           f"1 validation error detected: Value '{key}' at"
                           f" 'filters.{n}.member.key' failed to satisfy constraint: Member"
                           " must satisfy enum value set: [all, name, tag-key, description,"
                           " tag-value]")
        if values is None:
            raise invalid_parameter(f"Invalid filter values for key: {key}")
        if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
            raise invalid_parameter(f"Invalid filter values for key: {key}")
        checked.append((key, values))
    return checked


def matches(row: ManagedRow, filters: list[Filter]) -> bool:
    return all(_matches_key(row, key, values) for key, values in filters)


def _matches_key(row: ManagedRow, key: str, values: list[str]) -> bool:
    attributes, by_words = _ATTRIBUTES[key]
    strings = attributes(row)
    negated = [v[1:] for v in values if v.startswith("!")]
    wanted = [v for v in values if not v.startswith("!")]
    match = _words_match if by_words else _prefix_match
    if any(not match(pattern, s) for pattern in negated for s in strings):
        return True
    return any(match(pattern, s) for pattern in wanted for s in strings)


def _prefix_match(pattern: str, value: str) -> bool:
    return value.startswith(pattern)


def _words_match(pattern: str, value: str) -> bool:
    pattern_words = [w.lower() for w in split_words(pattern)]
    if not pattern_words:
        return False
    value_words = [w.lower() for w in split_words(value)]
    return all(any(v.startswith(p) for v in value_words) for p in pattern_words)


def split_words(text: str) -> list[str]:
    """Words: split at the one kind of separator the text has (none when it mixes
    kinds), then before capitals."""
    if text in _SEPARATORS:
        return []
    present = [c for c in _SEPARATORS if c in text]
    parts = [text] if len(present) != 1 else text.split(present[0])
    if len(present) > 1:
        return [text]
    return [w.strip() for part in parts for w in _CAPITALISED.split(part) if w]


def _tags(row: ManagedRow, index: int) -> list[str]:
    return [tag[index] for tag in row.tags or []]


def _all(row: ManagedRow) -> list[str]:
    return [row.name, *([row.description] if row.description else []), *_tags(row, 0),
            *_tags(row, 1)]


_ATTRIBUTES: dict[str, tuple[Callable[[ManagedRow], list[str]], bool]] = {
    "all": (_all, True),
    "name": (lambda row: [row.name], False),
    "description": (lambda row: [row.description] if row.description else [], True),
    "tag-key": (lambda row: _tags(row, 0), False),
    "tag-value": (lambda row: _tags(row, 1), False),
    "owning-service": (lambda row: [v for k, v in row.tags or [] if k == OWNING_SERVICE_TAG],
                       True),
    "primary-region": (lambda row: [], False),
}
