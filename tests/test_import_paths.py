"""The flattening rule of nested JSON documents (domain/import_paths.py), as properties:
every value of the document is one key's value, and the document comes back whole from
its keys when no member name holds the separator."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secrets_ledger.domain.errors import InvalidRequest
from secrets_ledger.domain.import_paths import SEPARATOR, flattened

NAMES = st.text(st.characters(blacklist_characters=SEPARATOR), min_size=1, max_size=5)
SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
VALUES = st.recursive(SCALARS | st.lists(SCALARS, max_size=2),
                      lambda inner: st.dictionaries(NAMES, inner, max_size=3), max_leaves=12)
DOCUMENTS = st.dictionaries(NAMES, VALUES, max_size=4)


def nested(keys: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for path, value in keys.items():
        *parents, name = path.split(SEPARATOR)
        node = document
        for parent in parents:
            node = node.setdefault(parent, {})
        node[name] = value
    return document


@given(DOCUMENTS)
def test_a_document_comes_back_whole_from_its_keys(document: dict[str, Any]) -> None:
    assert nested(flattened(document)) == document


@given(DOCUMENTS)
def test_no_key_holds_a_non_empty_object(document: dict[str, Any]) -> None:
    assert not any(isinstance(value, dict) and value for value in flattened(document).values())


def test_the_vapi_blob_becomes_two_paths() -> None:
    assert flattened({"vapi": {"publicApiKey": "pk", "privateApiKey": "sk"}}) == {
        "vapi/publicApiKey": "pk", "vapi/privateApiKey": "sk"}


@pytest.mark.parametrize("document", [{"a/b": 1, "a": {"b": 2}}, {"a": {"b": 2}, "a/b": 1},
                                      {"a": {"b/c": 1, "b": {"c": 2}}}])
def test_two_members_reaching_one_key_are_refused(document: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest, match="make the key"):
        flattened(document)
