"""How a nested JSON document becomes the ledger's keys (``secrets-ledger import``).

The rule, applied from the document's top level down: a member whose value is a
non-empty object is replaced by that object's members, each under ``<member>/<its name>``;
every other value (a string, number, boolean, null, array or empty object) is the JSON
value of its path. So ``{"vapi": {"publicApiKey": "pk", "privateApiKey": "sk"}}`` becomes
the keys ``vapi/publicApiKey`` and ``vapi/privateApiKey``. Two members that reach the same
path (``{"a/b": 1, "a": {"b": 2}}``) are refused, never one of them kept silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from secrets_ledger.domain.errors import InvalidRequest

SEPARATOR = "/"


def flattened(document: Mapping[str, Any]) -> dict[str, Any]:
    """The document's keys by the rule above."""
    keys: dict[str, Any] = {}
    pending: list[tuple[str, Mapping[str, Any]]] = [("", document)]
    while pending:  # no recursion: a deep document cannot exhaust the stack
        prefix, members = pending.pop()
        for name, value in members.items():
            path = f"{prefix}{name}"
            if isinstance(value, Mapping) and value:
                pending.append((path + SEPARATOR, value))
            elif path in keys:
                raise InvalidRequest(f"two entries of the document make the key {path!r}")
            else:
                keys[path] = value
    return keys
