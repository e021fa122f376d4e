"""Encryption and keys (SPEC 4) on both backends: no plaintext at rest, envelope keys,
associated data, crypto-shredding, destroying versions, tenant and master key rotation.

"Stored bytes" below means every file under the data directory (SQLite databases with
their WAL and shared-memory files, the master key file) and, on PostgreSQL, the text of
``pg_dump`` of the test's schema, where ``bytea`` columns (the event store's) appear as
hex: a marker is looked for both as raw bytes and as hex.
"""

from __future__ import annotations

import base64
import os
import shutil
import stat
import subprocess
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from secrets_ledger.adapters.masterkeys import (
    MASTER_KEY_FILE,
    NEXT_MASTER_KEY_FILE,
    MasterKeyring,
    read_key_file,
    write_key_file,
)
from secrets_ledger.core.ports import AuditFilter
from secrets_ledger.core.principals import Principal
from secrets_ledger.core.settings import Settings
from secrets_ledger.domain import crypto
from secrets_ledger.domain.changes import Precondition, RequestContext
from secrets_ledger.domain.errors import (
    CannotOpen,
    InvalidRequest,
    LedgerError,
    TenantShredded,
    Unavailable,
    VersionConflict,
    VersionDestroyed,
)
from secrets_ledger.domain.tenant import Tenant, tenant_id_for
from secrets_ledger.domain.times import format_time, utc_now
from secrets_ledger.runtime import LedgerRuntime
from tests.conftest import PG_URL
from tests.support import Blocking, blocking, run


def rotate_master_key(runtime: LedgerRuntime) -> int:
    """``keys rotate-master``, as the operator runs it: how many tenant keys it re-wrapped."""
    return run(runtime.ledger.keys.rotate_master(Principal.operator())).rewrapped


def new_marker() -> str:
    return f"MARKER-{uuid.uuid4()}"


def request() -> RequestContext:
    return RequestContext(actor="tok_test", request_id=f"req-{uuid.uuid4().hex[:12]}")


def pg_dump(settings: Settings) -> bytes:
    done = subprocess.run(
        ["pg_dump", f"--schema={settings.database_schema}", PG_URL],
        capture_output=True,
        check=True,
        timeout=120,
    )
    return done.stdout


def stored_blobs(settings: Settings, *, with_key_files: bool = True) -> dict[str, bytes]:
    """Every stored byte of the ledger, by where it came from."""
    blobs: dict[str, bytes] = {}
    for path in sorted(settings.data_dir.rglob("*")):
        if not path.is_file():
            continue
        if not with_key_files and path.name in (MASTER_KEY_FILE, NEXT_MASTER_KEY_FILE):
            continue
        blobs[str(path)] = path.read_bytes()
    if settings.database_url is not None:
        blobs["pg_dump"] = pg_dump(settings)
    return blobs


def forms(secret: bytes) -> list[bytes]:
    """The forms in which stored bytes could hold ``secret``: raw, and hex (``bytea``)."""
    return [secret, secret.hex().encode(), secret.hex().upper().encode()]


def assert_stored_nowhere(settings: Settings, secrets: list[bytes], *,
                          with_key_files: bool = True) -> None:
    blobs = stored_blobs(settings, with_key_files=with_key_files)
    assert blobs, "nothing was searched"
    for where, blob in blobs.items():
        for secret in secrets:
            for form in forms(secret):
                assert form not in blob, f"{secret!r} is stored in {where}"


def assert_stored_somewhere(settings: Settings, text: str) -> None:
    """A positive control: the search does see what the ledger stored."""
    blobs = stored_blobs(settings)
    assert any(form in blob for blob in blobs.values() for form in forms(text.encode()))


def tenant_events(runtime: LedgerRuntime, tenant: str) -> list[Any]:
    return list(runtime.storage.events.events.get(tenant_id_for(tenant)))


def writes_of(runtime: LedgerRuntime, tenant: str) -> list[dict[str, Any]]:
    return [write for event in tenant_events(runtime, tenant)
            if isinstance(event, Tenant.SecretVersionsWritten) for write in event.writes]


def write_of(runtime: LedgerRuntime, tenant: str, key: str, version: int) -> dict[str, Any]:
    [write] = [w for w in writes_of(runtime, tenant)
               if (w["key"], w["version"]) == (key, version)]
    return write


def all_key_material(runtime: LedgerRuntime) -> list[bytes]:
    """Every key the ledger can still unwrap: master keys, tenant keys and data keys."""
    envelope = runtime.ledger.door.envelope
    with runtime.storage.db.transaction() as cur:
        cur.execute("SELECT tenant_id, key_version FROM tenant_keys")
        tenant_keys = cur.fetchall()
        cur.execute("SELECT tenant_id, dek_id FROM data_keys")
        data_keys = cur.fetchall()
    material = list(envelope.master.held().values())
    key_file = runtime.storage.settings.data_dir / MASTER_KEY_FILE
    if key_file.exists():
        material.append(crypto.decode_master_key(key_file.read_text("ascii")))
    material += [envelope.sealing_key(str(t), int(kv)) for t, kv in tenant_keys]
    material += [envelope.data_key(str(t), str(d)) for t, d in data_keys]
    return material


def assert_no_key_opens(material: list[bytes], tenant: str, write: dict[str, Any]) -> None:
    sealed = crypto.from_text(write["ciphertext"])
    aad = crypto.value_aad(str(tenant_id_for(tenant)), write["key"], write["version"])
    for key in material:
        with pytest.raises(CannotOpen):
            crypto.open_sealed(key, sealed, aad)


def master_key_text(settings: Settings) -> str:
    return (settings.data_dir / MASTER_KEY_FILE).read_text("ascii").strip()


# ---- no plaintext at rest ---------------------------------------------------------------


def test_a_written_value_is_in_no_stored_byte(runtime: LedgerRuntime, ledger: Blocking,
                                              tenant: str, ctx: RequestContext,
                                              settings: Settings) -> None:
    marker = new_marker()
    ledger.put_secret(tenant, "db/password", marker, None, None, ctx)
    assert ledger.get_secret(tenant, "db/password", ctx).value == marker
    assert_stored_somewhere(settings, write_of(runtime, tenant, "db/password", 1)["ciphertext"])
    assert_stored_nowhere(settings, [marker.encode()])


def test_a_nested_value_is_in_no_stored_byte(ledger: Blocking, tenant: str,
                                             ctx: RequestContext, settings: Settings) -> None:
    marker = new_marker()
    value = {"user": "svc", "password": marker, "list": [marker]}
    ledger.put_secret(tenant, "db/creds", value, {"owner": "team-a"}, None, ctx)
    assert ledger.get_secret(tenant, "db/creds", ctx).value == value
    assert_stored_nowhere(settings, [marker.encode()])


def test_imported_values_are_in_no_stored_byte(ledger: Blocking, tenant: str,
                                               ctx: RequestContext, settings: Settings) -> None:
    markers = [new_marker(), new_marker()]
    results = ledger.import_secrets(tenant, {"one": markers[0], "two": {"v": markers[1]}}, ctx)
    assert sorted(r.key for r in results) == ["one", "two"]
    assert ledger.get_secret(tenant, "one", ctx).value == markers[0]
    assert_stored_nowhere(settings, [m.encode() for m in markers])


def test_a_rolled_back_value_is_in_no_stored_byte(ledger: Blocking, tenant: str,
                                                  ctx: RequestContext,
                                                  settings: Settings) -> None:
    first, second = new_marker(), new_marker()
    ledger.put_secret(tenant, "api/key", first, None, None, ctx)
    ledger.put_secret(tenant, "api/key", second, None, None, ctx)
    assert ledger.get_secret(tenant, "api/key", ctx).version == 2
    assert ledger.rollback_secret(tenant, "api/key", 1, ctx).version == 3
    assert ledger.get_secret(tenant, "api/key", ctx).value == first
    assert_stored_nowhere(settings, [first.encode(), second.encode()])


def test_values_written_around_a_tenant_key_rotation_are_in_no_stored_byte(
    ledger: Blocking, tenant: str, ctx: RequestContext, settings: Settings
) -> None:
    before, after = new_marker(), new_marker()
    ledger.put_secret(tenant, "k", before, None, None, ctx)
    ledger.rotate_tenant_key(tenant, ctx)
    ledger.put_secret(tenant, "k", after, None, None, ctx)
    assert ledger.get_secret(tenant, "k", ctx, version=1).value == before
    assert ledger.get_secret(tenant, "k", ctx).value == after
    assert_stored_nowhere(settings, [before.encode(), after.encode()])


def test_values_are_in_no_stored_byte_after_a_master_key_rotation(
    runtime: LedgerRuntime, ledger: Blocking, tenant: str, ctx: RequestContext,
    settings: Settings
) -> None:
    marker = new_marker()
    ledger.put_secret(tenant, "k", marker, None, None, ctx)
    rotate_master_key(runtime)
    assert ledger.get_secret(tenant, "k", ctx).value == marker
    assert_stored_nowhere(settings, [marker.encode()])


def test_a_refused_write_stores_its_value_nowhere_and_does_not_echo_it(
    ledger: Blocking, tenant: str, ctx: RequestContext, settings: Settings
) -> None:
    ledger.put_secret(tenant, "k", "first", None, None, ctx)
    marker = new_marker()
    with pytest.raises(VersionConflict) as raised:
        ledger.put_secret(tenant, "k", marker, None, Precondition.at_version(7), request())
    assert marker not in str(raised.value)
    assert marker not in repr(raised.value.extra)
    ledger.get_secret(tenant, "k", ctx)  # the views have caught up
    assert_stored_nowhere(settings, [marker.encode()])


def test_an_oversize_value_is_refused_without_echoing_it(ledger: Blocking, tenant: str,
                                                         ctx: RequestContext) -> None:
    marker = new_marker()
    with pytest.raises(LedgerError) as raised:
        ledger.put_secret(tenant, "big", marker * 2_000, None, None, ctx)
    assert raised.value.code == "value_too_large"
    assert marker not in str(raised.value)
    assert marker not in repr(raised.value.extra)


# ---- the master key ---------------------------------------------------------------------


def test_the_master_key_file_has_mode_0600(runtime: LedgerRuntime, settings: Settings) -> None:
    path = settings.data_dir / MASTER_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_the_master_key_file_holds_base64_of_32_bytes(runtime: LedgerRuntime,
                                                      settings: Settings) -> None:
    assert len(base64.b64decode(master_key_text(settings), validate=True)) == 32


def test_the_master_key_is_in_no_database(runtime: LedgerRuntime, ledger: Blocking, tenant: str,
                                          ctx: RequestContext, settings: Settings) -> None:
    ledger.put_secret(tenant, "k", new_marker(), None, None, ctx)
    ledger.rotate_tenant_key(tenant, ctx)
    ledger.get_secret(tenant, "k", ctx)
    text = master_key_text(settings)
    assert_stored_nowhere(settings, [text.encode(), base64.b64decode(text)],
                          with_key_files=False)


def test_the_database_without_the_master_key_opens_no_value(
    runtime: LedgerRuntime, ledger: Blocking, tenant: str, ctx: RequestContext,
    settings: Settings, tmp_path: Path
) -> None:
    marker = new_marker()
    ledger.put_secret(tenant, "k", marker, None, None, ctx)
    ledger.get_secret(tenant, "k", ctx)
    elsewhere = tmp_path / "stolen"
    elsewhere.mkdir()
    if settings.database_url is None:  # a copy of the database files, not of the key
        for path in settings.data_dir.iterdir():
            if path.name not in (MASTER_KEY_FILE, NEXT_MASTER_KEY_FILE):
                shutil.copy2(path, elsewhere / path.name)
    # With a master key of its own, the copy does not even start.
    with pytest.raises(Unavailable, match="does not open this ledger") as raised:
        LedgerRuntime(settings.model_copy(update={"data_dir": elsewhere}), follow=False)
    assert marker not in str(raised.value)


# ---- associated data: sealed material belongs to one place ------------------------------


@pytest.mark.parametrize(
    "wrong",
    [
        pytest.param(("other-tenant", "a", 1), id="another tenant"),
        pytest.param(("tenant", "b", 1), id="another key"),
        pytest.param(("tenant", "a", 2), id="another version"),
    ],
)
def test_a_value_sealed_for_one_place_does_not_open_under_another(
    wrong: tuple[str, str, int],
) -> None:
    key = crypto.generate_key()
    sealed = crypto.seal(key, b"value", crypto.value_aad("tenant", "a", 1))
    assert crypto.open_sealed(key, sealed, crypto.value_aad("tenant", "a", 1)) == b"value"
    with pytest.raises(CannotOpen):
        crypto.open_sealed(key, sealed, crypto.value_aad(*wrong))


def test_sealed_material_does_not_open_as_another_kind_of_material() -> None:
    key = crypto.generate_key()
    sealed = crypto.seal(key, b"k" * 32, crypto.data_key_aad("tenant", "dek-1"))
    with pytest.raises(CannotOpen):
        crypto.open_sealed(key, sealed, crypto.tenant_key_aad("tenant", 1))
    with pytest.raises(CannotOpen):
        crypto.open_sealed(key, sealed, crypto.data_key_aad("tenant", "dek-2"))


def test_sealed_material_opens_under_no_other_key_and_not_when_altered() -> None:
    key, aad = crypto.generate_key(), crypto.value_aad("t", "k", 1)
    sealed = crypto.seal(key, b"value", aad)
    with pytest.raises(CannotOpen):
        crypto.open_sealed(crypto.generate_key(), sealed, aad)
    flipped = bytes([sealed[0]]) + bytes([sealed[1] ^ 1]) + sealed[2:]
    with pytest.raises(CannotOpen):
        crypto.open_sealed(key, flipped, aad)
    with pytest.raises(CannotOpen):
        crypto.open_sealed(key, sealed[:20], aad)


def copy_version_row(runtime: LedgerRuntime, source: tuple[str, str, int],
                     target: tuple[str, str, int], with_dek_id: bool) -> None:
    """Copies the ciphertext (and maybe the data key id) of one view row onto another."""
    (s_tenant, s_key, s_version), (t_tenant, t_key, t_version) = source, target
    where = " WHERE tenant_id = %s AND key = %s AND version = %s"
    with runtime.storage.db.transaction() as cur:
        cur.execute("SELECT ciphertext, dek_id FROM secret_versions" + where,
                    (str(tenant_id_for(s_tenant)), s_key, s_version))
        row = cur.fetchone()
        assert row is not None
        assert row[0] is not None
        target_row = (str(tenant_id_for(t_tenant)), t_key, t_version)
        if with_dek_id:
            cur.execute("UPDATE secret_versions SET ciphertext = %s, dek_id = %s" + where,
                        (row[0], row[1], *target_row))
        else:
            cur.execute("UPDATE secret_versions SET ciphertext = %s" + where,
                        (row[0], *target_row))
        assert cur.rowcount == 1


@pytest.mark.parametrize("with_dek_id", [True, False], ids=["with dek id", "ciphertext only"])
@pytest.mark.parametrize(
    "target",
    [
        pytest.param(("acme", "b", 1), id="another key"),
        pytest.param(("acme", "a", 2), id="another version"),
        pytest.param(("other", "a", 1), id="another tenant"),
    ],
)
def test_a_ciphertext_copied_onto_another_row_fails_to_open(
    runtime: LedgerRuntime, ledger: Blocking, tenant: str, ctx: RequestContext,
    target: tuple[str, str, int], with_dek_id: bool
) -> None:
    secret = new_marker()
    ledger.put_secret(tenant, "a", secret, None, None, ctx)
    ledger.put_secret(tenant, "a", "a, second version", None, None, ctx)
    ledger.put_secret(tenant, "b", "b's own value", None, None, ctx)
    ledger.open_tenant("other", ctx)
    ledger.put_secret("other", "a", "other's own value", None, None, ctx)
    ledger.get_secret("other", "a", ctx)  # every view row exists
    copy_version_row(runtime, ("acme", "a", 1), target, with_dek_id)
    t_tenant, t_key, t_version = target
    with pytest.raises(LedgerError) as raised:
        ledger.get_secret(t_tenant, t_key, request(), version=t_version)
    assert isinstance(raised.value, VersionDestroyed)
    assert secret not in str(raised.value)
    assert ledger.get_secret(tenant, "a", ctx, version=1).value == secret


def test_a_wrapped_data_key_copied_to_another_id_fails_to_open(
    runtime: LedgerRuntime, ledger: Blocking, tenant: str, ctx: RequestContext
) -> None:
    ledger.put_secret(tenant, "a", "value", None, None, ctx)
    tenant_id = str(tenant_id_for(tenant))
    dek_id = write_of(runtime, tenant, "a", 1)["dek_id"]
    runtime.ledger.door.envelope.data_key(tenant_id, dek_id)  # opens where it belongs
    forged = str(uuid.uuid4())
    with runtime.storage.db.transaction() as cur:
        cur.execute(
            "INSERT INTO data_keys (dek_id, tenant_id, key_version, wrapped)"
            " SELECT %s, tenant_id, key_version, wrapped FROM data_keys WHERE dek_id = %s",
            (forged, dek_id),
        )
    with pytest.raises(CannotOpen):
        runtime.ledger.door.envelope.data_key(tenant_id, forged)


def test_a_wrapped_tenant_key_copied_to_another_tenant_fails_to_open(
    runtime: LedgerRuntime, ledger: Blocking, tenant: str, ctx: RequestContext
) -> None:
    ledger.open_tenant("other", ctx)
    ledger.put_secret("other", "a", "other's value", None, None, ctx)
    assert ledger.get_secret("other", "a", ctx).value == "other's value"
    acme, other = str(tenant_id_for(tenant)), str(tenant_id_for("other"))
    with runtime.storage.db.transaction() as cur:
        cur.execute("SELECT wrapped FROM tenant_keys WHERE tenant_id = %s AND key_version = 1",
                    (acme,))
        row = cur.fetchone()
        assert row is not None
        cur.execute("UPDATE tenant_keys SET wrapped = %s WHERE tenant_id = %s", (row[0], other))
    with pytest.raises(CannotOpen):
        runtime.ledger.door.envelope.data_key(other, write_of(runtime, "other", "a", 1)["dek_id"])
    with pytest.raises(VersionDestroyed):
        ledger.get_secret("other", "a", request())


# ---- crypto-shredding -------------------------------------------------------------------


@pytest.fixture
def shredded(runtime: LedgerRuntime, ledger: Blocking, tenant: str,
             ctx: RequestContext) -> list[dict[str, Any]]:
    """A tenant with history under two tenant keys, then shredded; yields its writes.

    Another tenant keeps its keys, so that there is key material left to try.
    """
    ledger.put_secret(tenant, "a", "alpha-1", None, None, ctx)
    ledger.put_secret(tenant, "a", "alpha-2", {"note": "second"}, None, ctx)
    ledger.import_secrets(tenant, {"b": "beta", "c": ["gamma"]}, ctx)
    ledger.rotate_tenant_key(tenant, ctx)
    ledger.put_secret(tenant, "b", "beta-2", None, None, ctx)
    ledger.rollback_secret(tenant, "a", 1, ctx)
    ledger.open_tenant("other", ctx)
    ledger.put_secret("other", "a", "other tenant's value", None, None, ctx)
    writes = writes_of(runtime, tenant)
    assert len(writes) == 6
    ledger.shred_tenant(tenant, ctx)
    return writes


def test_after_shred_reading_a_value_is_refused_as_shredded(
    ledger: Blocking, tenant: str, shredded: list[dict[str, Any]]
) -> None:
    for write in shredded:
        with pytest.raises(TenantShredded):
            ledger.get_secret(tenant, write["key"], request())
        with pytest.raises(TenantShredded):
            ledger.get_secret(tenant, write["key"], request(), version=write["version"])
    with pytest.raises(TenantShredded):
        ledger.get_secret(tenant, "a", request(), at=format_time(utc_now()))


def test_after_shred_rollback_is_refused(ledger: Blocking, tenant: str,
                                         shredded: list[dict[str, Any]]) -> None:
    with pytest.raises(TenantShredded):
        ledger.rollback_secret(tenant, "a", 1, request())


def test_after_shred_writes_imports_and_rotations_are_refused(
    ledger: Blocking, tenant: str, shredded: list[dict[str, Any]]
) -> None:
    with pytest.raises(TenantShredded):
        ledger.put_secret(tenant, "a", "new", None, None, request())
    with pytest.raises(TenantShredded):
        ledger.import_secrets(tenant, {"a": "alpha-1"}, request())
    with pytest.raises(TenantShredded):
        ledger.rotate_tenant_key(tenant, request())
    with pytest.raises(TenantShredded):
        ledger.shred_tenant(tenant, request())


def test_after_shred_no_data_key_or_tenant_key_of_the_tenant_opens(
    runtime: LedgerRuntime, tenant: str, shredded: list[dict[str, Any]]
) -> None:
    tenant_id = str(tenant_id_for(tenant))
    dek_ids = {write["dek_id"] for write in shredded}
    assert len(dek_ids) == len(shredded)
    for dek_id in dek_ids:
        with pytest.raises(CannotOpen):
            runtime.ledger.door.envelope.data_key(tenant_id, dek_id)
    for key_version in (1, 2):
        with pytest.raises(CannotOpen):
            runtime.ledger.door.envelope.sealing_key(tenant_id, key_version)


def test_after_shred_no_remaining_key_opens_any_ciphertext_of_the_tenant(
    runtime: LedgerRuntime, tenant: str, shredded: list[dict[str, Any]]
) -> None:
    material = all_key_material(runtime)
    assert len(material) >= 4  # master key, the other tenant's tenant key and data key
    for write in shredded:
        assert_no_key_opens(material, tenant, write)


def test_after_shred_the_history_is_intact_and_verifies(
    runtime: LedgerRuntime, ledger: Blocking, tenant: str, ctx: RequestContext
) -> None:
    ledger.put_secret(tenant, "a", "alpha", None, None, ctx)
    ledger.put_secret(tenant, "b", "beta", None, None, ctx)
    before = ledger.verify(tenant)
    writes_before = writes_of(runtime, tenant)
    ledger.shred_tenant(tenant, ctx)
    after = ledger.verify(tenant)
    assert before.ok
    assert after.ok
    assert after.events == before.events + 1
    assert writes_of(runtime, tenant) == writes_before
    assert isinstance(tenant_events(runtime, tenant)[-1], Tenant.Shredded)


def test_after_shred_versions_and_audit_still_answer(ledger: Blocking, tenant: str,
                                                     shredded: list[dict[str, Any]]) -> None:
    current, versions = ledger.list_versions(tenant, "a")
    assert (current, [v.version for v in versions]) == (3, [1, 2, 3])
    actions = [item.action for item in ledger.audit(tenant, AuditFilter(), limit=1000).items]
    assert actions[-1] == "shredded"


def test_shredding_one_tenant_leaves_another_readable(ledger: Blocking,
                                                      shredded: list[dict[str, Any]]) -> None:
    assert ledger.get_secret("other", "a", request()).value == "other tenant's value"


# ---- destroying versions ----------------------------------------------------------------


@pytest.fixture
def destroyed(ledger: Blocking, tenant: str, ctx: RequestContext) -> list[int]:
    for n in (1, 2, 3):
        ledger.put_secret(tenant, "k", f"value {n}", None, None, ctx)
    return ledger.destroy_versions(tenant, "k", [1, 2], ctx)


def test_destroying_versions_reports_them(destroyed: list[int]) -> None:
    assert destroyed == [1, 2]


def test_a_destroyed_version_cannot_be_read(ledger: Blocking, tenant: str,
                                            destroyed: list[int]) -> None:
    for version in destroyed:
        with pytest.raises(VersionDestroyed):
            ledger.get_secret(tenant, "k", request(), version=version)


def test_rolling_back_to_a_destroyed_version_is_refused(ledger: Blocking, tenant: str,
                                                       destroyed: list[int]) -> None:
    with pytest.raises(VersionDestroyed):
        ledger.rollback_secret(tenant, "k", 1, request())
    assert ledger.list_versions(tenant, "k")[0] == 3


def test_the_data_key_of_a_destroyed_version_is_gone(runtime: LedgerRuntime, tenant: str,
                                                     destroyed: list[int]) -> None:
    tenant_id = str(tenant_id_for(tenant))
    for version in destroyed:
        with pytest.raises(CannotOpen):
            runtime.ledger.door.envelope.data_key(tenant_id, write_of(runtime, tenant, "k", version)
                                          ["dek_id"])
    runtime.ledger.door.envelope.data_key(tenant_id, write_of(runtime, tenant, "k", 3)["dek_id"])


def test_no_remaining_key_opens_a_destroyed_version(runtime: LedgerRuntime, tenant: str,
                                                    destroyed: list[int]) -> None:
    material = all_key_material(runtime)
    for version in destroyed:
        assert_no_key_opens(material, tenant, write_of(runtime, tenant, "k", version))


def test_versions_not_destroyed_still_read(ledger: Blocking, tenant: str,
                                          destroyed: list[int]) -> None:
    assert ledger.get_secret(tenant, "k", request()).value == "value 3"
    assert ledger.get_secret(tenant, "k", request(), version=3).value == "value 3"
    assert ledger.rollback_secret(tenant, "k", 3, request()).version == 4


def test_destroyed_versions_are_listed_as_destroyed(ledger: Blocking, tenant: str,
                                                    destroyed: list[int]) -> None:
    _, versions = ledger.list_versions(tenant, "k")
    assert [v.state for v in versions] == ["destroyed", "destroyed", "active"]


def test_destroying_the_current_version_makes_the_key_unreadable(
    ledger: Blocking, tenant: str, ctx: RequestContext
) -> None:
    ledger.put_secret(tenant, "k", "only", None, None, ctx)
    ledger.destroy_versions(tenant, "k", [1], ctx)
    with pytest.raises(VersionDestroyed):
        ledger.get_secret(tenant, "k", request())


# ---- tenant key rotation ----------------------------------------------------------------


def test_tenant_key_rotation_returns_the_next_key_version(ledger: Blocking, tenant: str,
                                                          ctx: RequestContext) -> None:
    assert ledger.rotate_tenant_key(tenant, ctx) == 2
    assert ledger.rotate_tenant_key(tenant, request()) == 3


def test_after_tenant_key_rotation_new_writes_use_the_new_key(
    runtime: LedgerRuntime, ledger: Blocking, tenant: str, ctx: RequestContext
) -> None:
    ledger.put_secret(tenant, "k", "before", None, None, ctx)
    ledger.rotate_tenant_key(tenant, ctx)
    ledger.put_secret(tenant, "k", "after", None, None, request())
    assert write_of(runtime, tenant, "k", 1)["key_version"] == 1
    new_write = write_of(runtime, tenant, "k", 2)
    assert new_write["key_version"] == 2
    with runtime.storage.db.transaction() as cur:
        cur.execute("SELECT key_version FROM data_keys WHERE dek_id = %s",
                    (new_write["dek_id"],))
        assert cur.fetchone() == (2,)


def test_after_tenant_key_rotation_old_versions_still_read(ledger: Blocking, tenant: str,
                                                           ctx: RequestContext) -> None:
    ledger.put_secret(tenant, "k", "before", None, None, ctx)
    ledger.put_secret(tenant, "other", "untouched", None, None, ctx)
    ledger.rotate_tenant_key(tenant, ctx)
    ledger.put_secret(tenant, "k", "after", None, None, request())
    assert ledger.get_secret(tenant, "k", ctx, version=1).value == "before"
    assert ledger.get_secret(tenant, "k", ctx).value == "after"
    assert ledger.get_secret(tenant, "other", ctx).value == "untouched"
    assert ledger.rollback_secret(tenant, "k", 1, request()).version == 3
    assert ledger.get_secret(tenant, "k", ctx).value == "before"


def test_a_rollback_right_after_the_write_it_returns_to_reads_that_write(
    settings: Settings
) -> None:
    """Read-your-writes for rollback: no projector thread runs, so nothing but the
    ledger's own waiting can bring the views up to the acknowledged write."""
    with LedgerRuntime(settings, follow=False) as rt:
        blocking(rt).open_tenant("acme", request())
        blocking(rt).put_secret("acme", "k", "first", None, None, request())
        assert blocking(rt).rollback_secret("acme", "k", 1, request()).version == 2
        assert blocking(rt).get_secret("acme", "k", request()).value == "first"


# ---- master key rotation ----------------------------------------------------------------


def populate(ledger: Blocking, ctx: RequestContext) -> dict[tuple[str, str, int], Any]:
    """Two tenants, two tenant key versions, several versions; returns every value."""
    values: dict[tuple[str, str, int], Any] = {}
    for name in ("acme", "other"):
        if name not in {row.tenant for row in ledger.list_tenants()}:
            ledger.open_tenant(name, ctx)
        ledger.put_secret(name, "a", f"{name} a1", None, None, ctx)
        ledger.put_secret(name, "b", {"n": f"{name} b1"}, None, None, ctx)
        ledger.rotate_tenant_key(name, ctx)
        ledger.put_secret(name, "a", f"{name} a2", None, None, ctx)
        values.update({(name, "a", 1): f"{name} a1", (name, "b", 1): {"n": f"{name} b1"},
                       (name, "a", 2): f"{name} a2"})
    return values


def assert_all_read(ledger: Blocking, values: dict[tuple[str, str, int], Any]) -> None:
    for (name, key, version), value in values.items():
        assert ledger.get_secret(name, key, request(), version=version).value == value


def master_key_ids(runtime: LedgerRuntime) -> set[str]:
    with runtime.storage.db.transaction() as cur:
        cur.execute("SELECT master_key_id FROM tenant_keys")
        return {str(row[0]) for row in cur.fetchall()}


def test_master_key_rotation_keeps_every_value_readable(
    runtime: LedgerRuntime, ledger: Blocking, ctx: RequestContext
) -> None:
    values = populate(ledger, ctx)
    assert rotate_master_key(runtime) == 4
    assert_all_read(ledger, values)


def test_master_key_rotation_touches_no_event(runtime: LedgerRuntime, ledger: Blocking,
                                              ctx: RequestContext) -> None:
    populate(ledger, ctx)
    before = {name: ledger.verify(name) for name in ("acme", "other")}
    streams = {name: tenant_events(runtime, name) for name in ("acme", "other")}
    rotate_master_key(runtime)
    for name, check in before.items():
        after = ledger.verify(name)
        assert after.ok
        assert (after.events, after.head) == (check.events, check.head)
        assert [e.hash for e in tenant_events(runtime, name)] == [e.hash for e in streams[name]]


def test_master_key_rotation_replaces_the_key_file(runtime: LedgerRuntime, ledger: Blocking,
                                                   ctx: RequestContext,
                                                   settings: Settings) -> None:
    populate(ledger, ctx)
    old_text = master_key_text(settings)
    rotate_master_key(runtime)
    new_text = master_key_text(settings)
    assert new_text != old_text
    assert not (settings.data_dir / NEXT_MASTER_KEY_FILE).exists()
    assert stat.S_IMODE((settings.data_dir / MASTER_KEY_FILE).stat().st_mode) == 0o600
    new_id = crypto.key_fingerprint(crypto.decode_master_key(new_text))
    assert master_key_ids(runtime) == {new_id}


def test_after_master_key_rotation_a_fresh_process_reads_with_the_new_key_file_alone(
    runtime: LedgerRuntime, ledger: Blocking, ctx: RequestContext, settings: Settings
) -> None:
    values = populate(ledger, ctx)
    rotate_master_key(runtime)
    with LedgerRuntime(settings, follow=False) as fresh:
        assert_all_read(blocking(fresh), values)


def test_after_master_key_rotation_new_tenants_and_writes_work(
    runtime: LedgerRuntime, ledger: Blocking, ctx: RequestContext
) -> None:
    values = populate(ledger, ctx)
    rotate_master_key(runtime)
    ledger.put_secret("acme", "a", "acme a3", None, None, ctx)
    ledger.rotate_tenant_key("acme", ctx)
    ledger.open_tenant("newcomer", ctx)
    ledger.put_secret("newcomer", "x", "fresh", None, None, ctx)
    values.update({("acme", "a", 3): "acme a3", ("newcomer", "x", 1): "fresh"})
    assert_all_read(ledger, values)


def test_master_key_can_be_rotated_twice(runtime: LedgerRuntime, ledger: Blocking,
                                         ctx: RequestContext) -> None:
    values = populate(ledger, ctx)
    rotate_master_key(runtime)
    rotate_master_key(runtime)
    assert_all_read(ledger, values)


# ---- master key from the environment ----------------------------------------------------


def key_text() -> str:
    return base64.b64encode(os.urandom(32)).decode("ascii")


def with_env_keys(settings: Settings, master: str, new: str | None = None) -> Settings:
    return settings.model_copy(update={
        "master_key": SecretStr(master),
        "new_master_key": None if new is None else SecretStr(new),
    })


def test_with_an_env_master_key_no_key_file_is_written(settings: Settings) -> None:
    with LedgerRuntime(with_env_keys(settings, key_text())) as rt:
        blocking(rt).open_tenant("acme", request())
        blocking(rt).put_secret("acme", "k", "v", None, None, request())
    assert not (settings.data_dir / MASTER_KEY_FILE).exists()


def test_an_env_master_key_is_in_no_stored_byte(settings: Settings) -> None:
    master = key_text()
    with LedgerRuntime(with_env_keys(settings, master)) as rt:
        blocking(rt).open_tenant("acme", request())
        blocking(rt).put_secret("acme", "k", "v", None, None, request())
        assert blocking(rt).get_secret("acme", "k", request()).value == "v"
        assert_stored_nowhere(settings, [master.encode(), base64.b64decode(master)])


def test_env_master_key_rotation_rewraps_every_tenant_key_under_the_new_key(
    settings: Settings
) -> None:
    old, new = key_text(), key_text()
    with LedgerRuntime(with_env_keys(settings, old)) as rt:
        values = populate(blocking(rt), request())
        heads = {name: blocking(rt).verify(name) for name in ("acme", "other")}
    with LedgerRuntime(with_env_keys(settings, old, new), follow=False) as rt:
        assert rotate_master_key(rt) == 4
        assert master_key_ids(rt) == {crypto.key_fingerprint(base64.b64decode(new))}
    with LedgerRuntime(with_env_keys(settings, new)) as rt:
        assert_all_read(blocking(rt), values)
        for name, check in heads.items():
            after = blocking(rt).verify(name)
            assert (after.ok, after.events, after.head) == (True, check.events, check.head)


def test_after_env_master_key_rotation_the_old_key_alone_opens_nothing(
    settings: Settings
) -> None:
    old, new = key_text(), key_text()
    with LedgerRuntime(with_env_keys(settings, old)) as rt:
        blocking(rt).open_tenant("acme", request())
        blocking(rt).put_secret("acme", "k", "secret value", None, None, request())
    with LedgerRuntime(with_env_keys(settings, old, new), follow=False) as rt:
        rotate_master_key(rt)
    with pytest.raises(Unavailable, match="was retired by a rotation") as raised:
        LedgerRuntime(with_env_keys(settings, old), follow=False)
    assert "secret value" not in str(raised.value)


def test_env_master_key_rotation_without_a_new_key_is_refused(settings: Settings) -> None:
    with LedgerRuntime(with_env_keys(settings, key_text()), follow=False) as rt:
        blocking(rt).open_tenant("acme", request())
        with pytest.raises(InvalidRequest):
            rotate_master_key(rt)


def test_an_env_rotation_leaves_the_process_writing_under_the_new_key(
    settings: Settings
) -> None:
    old, new = key_text(), key_text()
    with LedgerRuntime(with_env_keys(settings, old, new), follow=False) as rt:
        blocking(rt).open_tenant("acme", request())
        rotate_master_key(rt)
        blocking(rt).rotate_tenant_key("acme", request())
        blocking(rt).put_secret("acme", "k", "v", None, None, request())
        assert master_key_ids(rt) == {crypto.key_fingerprint(base64.b64decode(new))}
    with LedgerRuntime(with_env_keys(settings, new), follow=False) as rt:
        assert blocking(rt).get_secret("acme", "k", request()).value == "v"



def test_processes_starting_together_on_a_fresh_data_dir_share_one_master_key(
        tmp_path: Path) -> None:
    """The first start generates the key file; one starting at the same moment must read
    the whole key, never an empty or half-written file. (Threads stand in for processes:
    they line up closer than process starts do.)"""
    for attempt in range(30):
        data_dir = tmp_path / f"data-{attempt}"
        data_dir.mkdir()
        start = threading.Barrier(8)

        def open_keyring(_: int, data_dir: Path = data_dir,
                         start: threading.Barrier = start) -> str:
            start.wait()
            return crypto.key_fingerprint(MasterKeyring(data_dir, None, None).primary())

        with ThreadPoolExecutor(8) as pool:
            fingerprints = set(pool.map(open_keyring, range(8)))
        assert len(fingerprints) == 1
        assert [p.name for p in data_dir.iterdir()] == ["master.key"]


def test_a_filesystem_without_hard_links_still_gets_a_whole_0600_key_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(source: Any, target: Any) -> None:
        raise PermissionError("hard links not supported")

    monkeypatch.setattr(os, "link", no_links)
    key = crypto.generate_key()
    write_key_file(tmp_path / "master.key", key)
    assert read_key_file(tmp_path / "master.key") == key
    assert stat.S_IMODE((tmp_path / "master.key").stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["master.key"]  # no draft left behind
    with pytest.raises(FileExistsError):
        write_key_file(tmp_path / "master.key", crypto.generate_key())
    assert read_key_file(tmp_path / "master.key") == key
