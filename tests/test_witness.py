"""The witness (C2SP tlog-witness, the witness's side): it cosigns a checkpoint only when
the log key signed it and it extends the last checkpoint it cosigned for that log, and
every refusal has the status the protocol gives it."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from secrets_ledger.verifier import (
    Checkpoint,
    consistency_proof,
    leaf_hash,
    open_note,
    parse_verifier_key,
    root_hash,
    sign_note,
    verifier_key,
)
from secrets_ledger.witness import Refusal, Witness

ORIGIN = "ledger.example/tenants/acme"
LOG_KEY = Ed25519PrivateKey.generate()


def leaves(count: int, fork_at: int | None = None) -> list[bytes]:
    return [leaf_hash(b"E" + hashlib.sha256(
        f"{i}{'-forked' if fork_at is not None and i >= fork_at else ''}".encode()).digest())
        for i in range(count)]


def note(hashes: list[bytes], origin: str = ORIGIN,
         key: Ed25519PrivateKey = LOG_KEY) -> str:
    return sign_note(Checkpoint(origin, len(hashes), root_hash(hashes)).text(),
                     "ledger.example", key)


def body(old: int, hashes: list[bytes], proof: list[bytes] | None = None, **options: object
         ) -> str:
    if proof is None:
        proof = consistency_proof(old, hashes) if 0 < old < len(hashes) else []
    lines = "".join(base64.b64encode(h).decode() + "\n" for h in proof)
    return f"old {old}\n{lines}\n{note(hashes, **options)}"  # type: ignore[arg-type]


@pytest.fixture
def witness(tmp_path: Path) -> Witness:
    trusted = parse_verifier_key(verifier_key("ledger.example", LOG_KEY.public_key()))
    return Witness(tmp_path / "witness", "witness.example/w1", [trusted],
                   "ledger.example/tenants/")


def refusal(witness: Witness, request: str) -> Refusal:
    with pytest.raises(Refusal) as refused:
        witness.add_checkpoint(request)
    return refused.value


def test_a_first_checkpoint_is_cosigned_and_the_cosignature_verifies(witness: Witness) -> None:
    submitted = note(leaves(5))
    line = witness.add_checkpoint(body(0, leaves(5)))
    key = parse_verifier_key(witness.verifier_key)
    assert open_note(submitted + line, [key])[1] == ["witness.example/w1"]


def test_a_checkpoint_that_extends_the_last_one_is_cosigned(witness: Witness) -> None:
    witness.add_checkpoint(body(0, leaves(5)))
    assert witness.add_checkpoint(body(5, leaves(9))).startswith("\u2014 witness.example/w1 ")
    assert witness.add_checkpoint(body(9, leaves(9)))  # the same one again


def test_a_stale_old_size_is_409_with_the_size_it_holds(witness: Witness) -> None:
    witness.add_checkpoint(body(0, leaves(5)))
    refused = refusal(witness, body(0, leaves(7)))
    assert (refused.status, refused.text, refused.media_type) == (409, "5\n",
                                                                 "text/x.tlog.size")


def test_a_forked_log_is_422_and_never_cosigned(witness: Witness) -> None:
    witness.add_checkpoint(body(0, leaves(6)))
    forked = leaves(9, fork_at=4)  # leaves 4 and 5 rewritten, then grown
    assert refusal(witness, body(6, forked)).status == 422
    # and the honest log still goes on: the witness kept its state
    assert witness.add_checkpoint(body(6, leaves(8)))


def test_the_same_size_with_another_root_is_409(witness: Witness) -> None:
    witness.add_checkpoint(body(0, leaves(6)))
    assert refusal(witness, body(6, leaves(6, fork_at=5))).status == 409


def test_an_untrusted_key_is_403_and_an_unknown_log_404(witness: Witness) -> None:
    assert refusal(witness, body(0, leaves(3), key=Ed25519PrivateKey.generate())
                   ).status == 403
    assert refusal(witness, body(0, leaves(3), origin="other.example/log")).status == 404


@pytest.mark.parametrize("request_text", [
    "", "old x\n\nnot a checkpoint", "old 1\nnot base64!\n\n" + note(leaves(2)),
    "old 9\n\n" + note(leaves(2)), "new 0\n\n" + note(leaves(2))])
def test_malformed_requests_are_400(witness: Witness, request_text: str) -> None:
    assert refusal(witness, request_text).status == 400
