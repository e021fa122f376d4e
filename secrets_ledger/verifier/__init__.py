"""The independent verifier of a tenant's transparency log: what an auditor runs without
trusting the server, so it imports nothing from the rest of the project (only the
standard library and ``cryptography``; an import-linter contract keeps it so), and a
command line on top (``python -m secrets_ledger.verifier``).

Every failure is one ``VerificationError`` saying what did not hold.
"""

from secrets_ledger.verifier.checks import (
    Trusted,
    recompute_root,
    verify_checkpoint,
    verify_extends,
    verify_read,
)
from secrets_ledger.verifier.errors import VerificationError
from secrets_ledger.verifier.merkle import (
    HASH_BYTES,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from secrets_ledger.verifier.notes import (
    COSIGNATURE,
    ED25519,
    Checkpoint,
    Verifier,
    cosign,
    key_id,
    open_note,
    parse_checkpoint,
    parse_verifier_key,
    sign_note,
    verifier_key,
)
from secrets_ledger.verifier.records import (
    check_value,
    event_link_hash,
    leaf_of,
    reads_digest,
    value_commitment,
)

__all__ = [
    "COSIGNATURE",
    "ED25519",
    "HASH_BYTES",
    "Checkpoint",
    "Trusted",
    "VerificationError",
    "Verifier",
    "check_value",
    "consistency_proof",
    "cosign",
    "event_link_hash",
    "inclusion_proof",
    "key_id",
    "leaf_hash",
    "leaf_of",
    "node_hash",
    "open_note",
    "parse_checkpoint",
    "parse_verifier_key",
    "reads_digest",
    "recompute_root",
    "root_hash",
    "sign_note",
    "value_commitment",
    "verifier_key",
    "verify_checkpoint",
    "verify_consistency",
    "verify_extends",
    "verify_inclusion",
    "verify_read",
]
