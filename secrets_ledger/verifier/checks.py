"""What an auditor or a reader checks, end to end, from what the server sent and the keys
it trusts: a checkpoint (the log's signature, a quorum of witnesses, the tenant's
origin), a read (its value bound to a leaf included in that checkpoint), two
checkpoints' consistency, and a root recomputed from every leaf."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import NAMESPACE_URL, uuid5

from secrets_ledger.verifier.errors import VerificationError
from secrets_ledger.verifier.merkle import (
    leaf_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from secrets_ledger.verifier.notes import Checkpoint, Verifier, open_note, parse_checkpoint
from secrets_ledger.verifier.records import check_value, leaf_of


@dataclass(frozen=True)
class Trusted:
    """The keys an auditor trusts: the log's (any one suffices), the witnesses', and how
    many witnesses must have cosigned."""

    log_keys: Sequence[Verifier]
    witness_keys: Sequence[Verifier] = ()
    quorum: int = 0


def tenant_id(tenant: str) -> str:
    """The tenant's id in its records (a name-based UUID, as the ledger derives it)."""
    return str(uuid5(NAMESPACE_URL, f"/secrets-ledger/tenants/{tenant}"))


def hashes(encoded: Sequence[str]) -> list[bytes]:
    try:
        return [base64.b64decode(text, validate=True) for text in encoded]
    except (binascii.Error, TypeError):
        raise VerificationError("a proof hash is not base64") from None


def verify_checkpoint(note: str, trusted: Trusted, origin: str | None = None) -> Checkpoint:
    """The checkpoint of a signed note the log key signed and at least ``quorum`` of the
    trusted witnesses cosigned (and, if given, of that origin)."""
    text, signers = open_note(note, [*trusted.log_keys, *trusted.witness_keys])
    if not {key.name for key in trusted.log_keys} & set(signers):
        raise VerificationError("the log key did not sign this checkpoint")
    witnesses = {key.name for key in trusted.witness_keys} & set(signers)
    if len(witnesses) < trusted.quorum:
        raise VerificationError(f"{len(witnesses)} trusted witnesses cosigned this"
                                f" checkpoint; {trusted.quorum} are required")
    checkpoint = parse_checkpoint(text)
    if origin is not None and checkpoint.origin != origin:
        raise VerificationError(f"the checkpoint is of another log ({checkpoint.origin})")
    return checkpoint


def verify_read(tenant: str, answer: Mapping[str, Any], trusted: Trusted,
                origin_prefix: str | None = None) -> Checkpoint:
    """That a read's answer (``GET …/secrets/<key>?proof=true``) carries the value the log
    recorded: its proof's record wrote that value as that version of that key, the
    record is the tenant's and is included in a checkpoint the trusted keys signed."""
    try:
        proof, key, version = answer["proof"], str(answer["key"]), int(answer["version"])
        value_json, record = str(proof["value_json"]), dict(proof["record"])
        index, size = int(proof["leaf_index"]), int(proof["tree_size"])
        opening = base64.b64decode(proof["opening"], validate=True)
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise VerificationError("the answer carries no well-formed proof") from None
    if json.loads(value_json) != answer.get("value"):
        raise VerificationError("the value is not the one the proof commits to")
    if record.get("tenant_id") != tenant_id(tenant):
        raise VerificationError("the proof's record is another tenant's")
    check_value(record, key, version, value_json.encode("utf-8"), opening)
    origin = None if origin_prefix is None else origin_prefix + tenant
    checkpoint = verify_checkpoint(str(proof["checkpoint"]), trusted, origin)
    if checkpoint.size != size:
        raise VerificationError("the proof is for another tree size than its checkpoint")
    verify_inclusion(index, size, leaf_hash(leaf_of(record)),
                     hashes(proof["inclusion"]), checkpoint.root)
    return checkpoint


def verify_extends(remembered: Checkpoint, latest: Checkpoint, proof: Sequence[str]) -> None:
    """That the latest checkpoint extends the one remembered (no history rewritten)."""
    if remembered.origin != latest.origin:
        raise VerificationError("the two checkpoints are of different logs")
    if latest.size < remembered.size:
        raise VerificationError("the log shrank since the remembered checkpoint")
    verify_consistency(remembered.size, latest.size, hashes(proof), remembered.root,
                       latest.root)


def recompute_root(records: Sequence[Mapping[str, Any]], stored_leaf_hashes: Sequence[str] = ()
                   ) -> bytes:
    """The root of a log from every one of its records, in order (and, if given, a check
    that each recomputed leaf is the one the server said it stored)."""
    leaf_hashes = [leaf_hash(leaf_of(record)) for record in records]
    for index, (mine, theirs) in enumerate(zip(leaf_hashes, hashes(stored_leaf_hashes),
                                               strict=False)):
        if mine != theirs:
            raise VerificationError(f"leaf {index} is not what its record recomputes to")
    return root_hash(leaf_hashes)
