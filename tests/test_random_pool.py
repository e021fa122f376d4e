"""Random bytes for keys, key ids and nonces: drawn from os.urandom in bulk, never twice."""

from __future__ import annotations

import os

from domain import crypto


def test_draws_are_fresh_and_of_the_size_asked() -> None:
    draws = [crypto.random_bytes(12) for _ in range(3 * crypto.RANDOM_POOL_BYTES // 12)]
    assert all(len(draw) == 12 for draw in draws)
    assert len(set(draws)) == len(draws)
    assert len(crypto.random_bytes(crypto.RANDOM_POOL_BYTES + 1)) == crypto.RANDOM_POOL_BYTES + 1


def test_keys_and_nonces_differ_on_every_call() -> None:
    keys = {crypto.generate_key() for _ in range(500)}
    assert len(keys) == 500
    assert all(len(key) == crypto.KEY_BYTES for key in keys)
    key = crypto.generate_key()
    sealed = {crypto.seal(key, b"same", b"aad") for _ in range(500)}
    assert len(sealed) == 500
    assert len({s[: crypto.NONCE_BYTES] for s in sealed}) == 500
    assert all(crypto.open_sealed(key, s, b"aad") == b"same" for s in sealed)


def test_bytes_handed_out_are_erased_from_the_pool() -> None:
    drawn = crypto.random_bytes(32)
    pool = crypto._random_pool
    assert drawn not in bytes(pool._pool)
    assert not any(pool._pool[: pool._used])


def test_a_forked_child_does_not_reuse_the_parents_bytes() -> None:
    crypto.random_bytes(1)  # the parent's pool holds unused bytes
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.write(writer, crypto.random_bytes(64))
        os._exit(0)
    os.close(writer)
    os.waitpid(pid, 0)
    child = os.read(reader, 64)
    os.close(reader)
    assert len(child) == 64
    assert child != crypto.random_bytes(64)
