"""What a tenant's log leaves are, recomputed from the records the server serves (which
hold ciphertext and metadata, never a value), and how a value read is bound to one.

- An event's leaf is ``E`` followed by its link hash: SHA-256 of the canonical JSON of its
  tenant, stream version, type, time and stored fields (the tenant chain's own hash).
- A read record's leaf, for one tenant, is ``R`` followed by SHA-256 of the canonical
  JSON of the record's id, time and that tenant's reads (never another tenant's).
- A written value carries a commitment: ``SHA-256("secrets-ledger value" 0x00 || opening
  || value)``; the server hands the opening (32 bytes) only to a reader of that value,
  who recomputes the commitment from the value it was given.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from typing import Any

from secrets_ledger.verifier.errors import VerificationError

EVENT_LEAF = b"E"
READS_LEAF = b"R"
_FRAMING_FIELDS = frozenset(
    {"hash", "originator_id", "originator_version", "timestamp", "originator_topic"})
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _digest(body: Any) -> bytes:
    return hashlib.sha256(_CANONICAL.encode(body).encode("utf-8")).digest()


def event_link_hash(record: Mapping[str, Any]) -> str:
    """The link hash of a stored tenant event, recomputed from its record."""
    try:
        body = {"tenant_id": str(record["tenant_id"]), "version": int(record["version"]),
                "type": str(record["type"]), "at": str(record["at"]),
                "fields": {k: v for k, v in dict(record["fields"]).items()
                           if k not in _FRAMING_FIELDS}}
    except (KeyError, TypeError, ValueError):
        raise VerificationError("not an event record") from None
    return _digest(body).hex()


def reads_digest(record_id: str, at: str, reads: Sequence[Mapping[str, Any]]) -> bytes:
    return _digest({"record": record_id, "at": at,
                    "reads": [{"key": read["key"], "version": read["version"],
                               "actor": read["actor"], "request_id": read["request_id"]}
                              for read in reads]})


def leaf_of(record: Mapping[str, Any]) -> bytes:
    """The leaf a served record stands for."""
    kind = record.get("kind")
    if kind == "event":
        return EVENT_LEAF + bytes.fromhex(event_link_hash(record))
    if kind == "reads":
        try:
            return READS_LEAF + reads_digest(str(record["record_id"]), str(record["at"]),
                                             list(record["reads"]))
        except (KeyError, TypeError):
            raise VerificationError("not a read record") from None
    raise VerificationError("a record of an unknown kind")


def value_commitment(opening: bytes, value: bytes) -> str:
    return hashlib.sha256(b"secrets-ledger value\x00" + opening + value).hexdigest()


def check_value(record: Mapping[str, Any], key: str, version: int, value: bytes,
                opening: bytes) -> None:
    """That the event record wrote ``value`` as that version of that key."""
    writes = record.get("fields", {}).get("writes") if record.get("kind") == "event" else None
    for write in writes or ():
        if write.get("key") == key and write.get("version") == version:
            commitment = write.get("commitment")
            if not isinstance(commitment, str):
                raise VerificationError("the version was written without a commitment"
                                        " (before the transparency log)")
            if not hmac.compare_digest(value_commitment(opening, value), commitment):
                raise VerificationError("the value is not the one the log recorded")
            return
    raise VerificationError("the record did not write that version of that key")
