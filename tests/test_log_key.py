"""The log key (issue 16): outside the database, published, rotated without breaking any
checkpoint signed before. Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import base64
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr

from secrets_ledger.adapters.log_keys import LOG_KEY_FILE, signer_key_text
from secrets_ledger.core.principals import Principal
from secrets_ledger.core.settings import Settings
from secrets_ledger.domain.errors import InvalidRequest
from secrets_ledger.runtime import LedgerRuntime
from secrets_ledger.verifier import (
    Trusted,
    VerificationError,
    parse_verifier_key,
    verify_checkpoint,
    verify_extends,
)
from tests.support import Blocking, run
from tests.test_concurrency import request

OPERATOR = Principal.operator()


def latest(runtime: LedgerRuntime) -> str:
    runtime.ledger.checkpointer.sign_round()
    return run(runtime.ledger.transparency.checkpoint(OPERATOR, "acme")).note


def test_the_generated_log_key_is_a_private_file(runtime: LedgerRuntime,
                                                 settings: Settings) -> None:
    mode = (settings.data_dir / LOG_KEY_FILE).stat().st_mode
    assert stat.S_IMODE(mode) == 0o600
    assert len(runtime.ledger.transparency.log_keys()) == 1


def test_a_rotation_signs_with_the_new_key_and_keeps_the_old_one_published(
        ledger: Blocking, runtime: LedgerRuntime) -> None:
    ledger.open_tenant("acme", request())
    ledger.put_secret("acme", "k", "v1", None, None, request())
    old_key = parse_verifier_key(runtime.ledger.transparency.log_keys()[0])
    before = verify_checkpoint(latest(runtime), Trusted([old_key]))
    new_text = run(runtime.ledger.transparency.rotate_log_key(OPERATOR))
    published = runtime.ledger.transparency.log_keys()
    assert published[0] == new_text
    assert parse_verifier_key(published[1]).id == old_key.id  # still published
    ledger.put_secret("acme", "k", "v2", None, None, request())
    note = latest(runtime)
    with pytest.raises(VerificationError):
        verify_checkpoint(note, Trusted([old_key]))
    after = verify_checkpoint(note, Trusted([parse_verifier_key(new_text)]))
    proof = run(runtime.ledger.transparency.consistency(OPERATOR, "acme", before.size,
                                                        after.size))
    verify_extends(before, after, [base64.b64encode(h).decode() for h in proof.hashes])


def test_a_configured_log_key_is_used_and_not_rotated_here(settings: Settings) -> None:
    signer = signer_key_text("ledger.example", Ed25519PrivateKey.generate())
    configured = settings.model_copy(update={"log_key": SecretStr(signer)})
    with LedgerRuntime(configured) as runtime:
        assert runtime.ledger.transparency.log_keys()[0].startswith("ledger.example+")
        assert runtime.ledger.checkpointer.origin("acme") == "ledger.example/tenants/acme"
        with pytest.raises(InvalidRequest, match="LEDGER_LOG_KEY"):
            run(runtime.ledger.transparency.rotate_log_key(OPERATOR))


def test_a_malformed_log_key_is_refused_without_echoing_it(settings: Settings) -> None:
    broken = settings.model_copy(
        update={"log_key": SecretStr("PRIVATE+KEY+x+00000000+c2VjcmV0")})
    with pytest.raises(InvalidRequest) as refused:
        LedgerRuntime(broken)
    assert "c2VjcmV0" not in str(refused.value)


def test_a_malformed_witness_setting_is_one_clear_refusal(settings: Settings) -> None:
    broken = settings.model_copy(update={"witnesses": ["not-a-url somekey"]})
    with pytest.raises(InvalidRequest, match="LEDGER_WITNESSES"):
        LedgerRuntime(broken)
