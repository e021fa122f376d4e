"""The independent verifier (``secrets_ledger.verifier``): RFC 9162 Merkle roots against
the RFC 6962 known-answer vectors, inclusion and consistency proofs that verify for
every leaf and every pair of sizes and fail once anything is changed, C2SP checkpoints,
and C2SP signed notes with Ed25519 keys."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from secrets_ledger.verifier import (
    Checkpoint,
    VerificationError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    open_note,
    parse_checkpoint,
    parse_verifier_key,
    root_hash,
    sign_note,
    verifier_key,
    verify_consistency,
    verify_inclusion,
)

# The RFC 6962 test tree (certificate-transparency's own vectors): leaves and the root of
# each prefix.
LEAVES = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31", b"\x40\x41\x42\x43",
          bytes(range(0x50, 0x58)), bytes(range(0x60, 0x70))]
ROOTS = ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
         "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
         "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
         "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
         "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
         "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
         "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
         "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"]
HASHES = [leaf_hash(leaf) for leaf in LEAVES]
sizes = st.integers(min_value=1, max_value=70)


def tree(size: int) -> list[bytes]:
    return [leaf_hash(n.to_bytes(4, "big")) for n in range(size)]


def flipped(data: bytes) -> bytes:
    return bytes([data[0] ^ 1]) + data[1:]


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_rfc_6962_vectors(size: int) -> None:
    assert root_hash(HASHES[:size]).hex() == ROOTS[size - 1]


@given(size=sizes, data=st.data())
def test_every_inclusion_proof_verifies_and_fails_once_changed(size: int,
                                                               data: st.DataObject) -> None:
    leaves = tree(size)
    root = root_hash(leaves)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    proof = inclusion_proof(index, leaves)
    verify_inclusion(index, size, leaves[index], proof, root)
    with pytest.raises(VerificationError):
        verify_inclusion(index, size, flipped(leaves[index]), proof, root)
    with pytest.raises(VerificationError):
        verify_inclusion(index, size, leaves[index], proof, flipped(root))
    if proof:
        with pytest.raises(VerificationError):
            verify_inclusion(index, size, leaves[index], [flipped(proof[0]), *proof[1:]],
                             root)
    if size > 1:
        with pytest.raises(VerificationError):
            verify_inclusion((index + 1) % size, size, leaves[index], proof, root)


@given(new_size=sizes, data=st.data())
def test_every_consistency_proof_verifies_and_fails_once_changed(new_size: int,
                                                                 data: st.DataObject) -> None:
    leaves = tree(new_size)
    old_size = data.draw(st.integers(min_value=1, max_value=new_size))
    old_root, new_root = root_hash(leaves[:old_size]), root_hash(leaves)
    proof = consistency_proof(old_size, leaves)
    verify_consistency(old_size, new_size, proof, old_root, new_root)
    with pytest.raises(VerificationError):
        verify_consistency(old_size, new_size, proof, flipped(old_root), new_root)
    with pytest.raises(VerificationError):
        verify_consistency(old_size, new_size, proof, old_root, flipped(new_root))
    if proof:
        with pytest.raises(VerificationError):
            verify_consistency(old_size, new_size, [flipped(proof[0]), *proof[1:]],
                               old_root, new_root)


def test_a_forked_history_is_not_consistent() -> None:
    honest = tree(10)
    forked = [*honest[:6], leaf_hash(b"rewritten"), *honest[7:]]
    proof = consistency_proof(8, forked)
    with pytest.raises(VerificationError):
        verify_consistency(8, 10, proof, root_hash(honest[:8]), root_hash(forked))


def test_a_checkpoint_reads_back_as_written() -> None:
    checkpoint = Checkpoint("ledger.example/t/acme", 12, root_hash(tree(12)))
    assert parse_checkpoint(checkpoint.text()) == checkpoint
    for bad in ("", "origin\n12\n", "origin\n012\n" + base64.b64encode(b"x" * 32).decode()
                + "\n", "origin\n1\nnot base64!\n", "origin\n1\n" + base64.b64encode(
                    b"short").decode() + "\n"):
        with pytest.raises(VerificationError):
            parse_checkpoint(bad)


def test_a_signed_note_opens_with_its_key_and_no_other() -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    text = Checkpoint("ledger.example/t/acme", 3, root_hash(tree(3))).text()
    note = sign_note(text, "ledger.example/log", key)
    published = verifier_key("ledger.example/log", key.public_key())
    verifier = parse_verifier_key(published)
    assert open_note(note, [verifier]) == (text, ["ledger.example/log"])
    with pytest.raises(VerificationError, match="no known key"):
        open_note(note, [parse_verifier_key(verifier_key("ledger.example/log",
                                                         other.public_key()))])
    tampered = note.replace("\n3\n", "\n4\n")
    with pytest.raises(VerificationError, match="does not verify"):
        open_note(tampered, [verifier])


def test_a_cosigned_note_names_every_known_signer() -> None:
    log, witness = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    text = Checkpoint("ledger.example/t/acme", 1, root_hash(tree(1))).text()
    signed = sign_note(text, "log", log)
    cosigned = signed + sign_note(text, "witness", witness).split("\n\n", 1)[1]
    keys = [parse_verifier_key(verifier_key(n, k.public_key()))
            for n, k in (("log", log), ("witness", witness))]
    assert open_note(cosigned, keys) == (text, ["log", "witness"])


def test_a_verifier_key_that_does_not_match_its_id_is_refused() -> None:
    published = verifier_key("log", Ed25519PrivateKey.generate().public_key())
    name, _, encoded = published.split("+", 2)
    with pytest.raises(VerificationError):
        parse_verifier_key(f"{name}+00000000+{encoded}")
