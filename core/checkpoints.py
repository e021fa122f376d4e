"""Signed checkpoints of the tenants' logs, and their witnessing.

A server signs, every ``checkpoint_interval`` seconds, one checkpoint for each log it has
grown since its last round (every process signs what it appended: a command line verb
as it exits; a server's start signs what any process left behind), stores them in one
transaction, then submits each to the configured witnesses (C2SP
``tlog-witness``) with a consistency proof from the size the witness last cosigned, and
attaches the cosignatures that verify against the witness's key. A read that asks for
its proof gets a checkpoint covering its leaf: the latest, or one signed there and then.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from secrets_ledger.core.log_ports import LogRows, LogSigner, StoredCheckpoint, WitnessPost
from secrets_ledger.core.log_proofs import LogProofs
from secrets_ledger.core.ports import ViewQueries
from secrets_ledger.domain.errors import InvalidRequest, Unavailable
from secrets_ledger.domain.tenant import tenant_id_for
from secrets_ledger.domain.times import format_time, utc_now
from secrets_ledger.verifier import (
    Checkpoint,
    VerificationError,
    Verifier,
    open_note,
    parse_verifier_key,
)

log = logging.getLogger(__name__)
MAX_WITNESS_PROOF = 63  # lines a witness accepts (tlog-witness)


@dataclass(frozen=True)
class Witness:
    url: str
    key: Verifier

    @classmethod
    def parse(cls, setting: str) -> Witness:
        """From ``"<URL> <verifier key>"`` (``LEDGER_WITNESSES``)."""
        url, _, key = setting.strip().partition(" ")
        try:
            if not url.startswith(("http://", "https://")):
                raise VerificationError("no URL")
            return cls(url.rstrip("/"), parse_verifier_key(key))
        except VerificationError:  # a configuration error: one line, exit 2
            raise InvalidRequest("LEDGER_WITNESSES: each is '<URL> <verifier key>'") from None


class Checkpointer:
    def __init__(self, rows: LogRows, signer: LogSigner, views: ViewQueries,
                 witnesses: Sequence[Witness] = (), post: WitnessPost | None = None) -> None:
        self.rows = rows
        self.signer = signer
        self.views = views
        self.proofs = LogProofs(rows)
        self.witnesses = list(witnesses)
        self.post = post
        self._names: dict[str, str] = {}
        self._witnessed: dict[tuple[str, str], int] = {}  # (witness, tenant) -> its size
        # Signed on demand (for a read's proof): witnessed by the next round, not the read.
        self._unwitnessed: dict[str, tuple[str, int, bytes, str, str]] = {}
        self._lock = threading.Lock()  # one signing round at a time in this process
        # The latest checkpoint known of each log, for reads' proofs: any one that covers
        # the leaf proves it (a newer one may exist; the reader can ask for consistency).
        self._latest: dict[str, StoredCheckpoint] = {}

    def origin(self, tenant: str) -> str:
        return f"{self.signer.name}/tenants/{tenant}"

    def _name_of(self, tenant_id: str) -> str | None:
        name = self._names.get(tenant_id)
        if name is None:  # a tenant opened since: its name is in the views (or soon)
            self._names = {str(tenant_id_for(row[0])): row[0] for row in self.views.tenants()}
            name = self._names.get(tenant_id)
        return name

    def _signed(self, tenant_id: str, name: str, size: int, root: bytes
                ) -> tuple[str, int, bytes, str, str]:
        note = self.signer.sign(Checkpoint(self.origin(name), size, root).text())
        return tenant_id, size, root, note, format_time(utc_now())

    def sign_round(self, *, sweep: bool = False) -> int:
        """Signs and stores a checkpoint of every log this process grew since the last
        round (``sweep``: of every log behind its checkpoint, whoever grew it: a server's
        start), then has them witnessed; how many it signed."""
        with self._lock:
            heads = self.rows.behind() if sweep else self.rows.unsigned()
            rows = [self._signed(tenant_id, name, size, root)
                    for tenant_id, size, root in heads
                    if (name := self._name_of(tenant_id)) is not None]
            if rows:
                self.rows.store_checkpoints(rows)
                self._remember(rows)
            signed = {row[0] for row in rows}
            rows += [row for tenant_id, row in self._unwitnessed.items()
                     if tenant_id not in signed]
            self._unwitnessed.clear()
        if not self.witnesses:
            return len(signed)
        for tenant_id, size, root, note, _ in rows:
            self._witness(tenant_id, size, root, note)
        return len(signed)

    def _remember(self, rows: Sequence[tuple[str, int, bytes, str, str]]) -> None:
        for tenant_id, size, root, note, _ in rows:
            known = self._latest.get(tenant_id)
            if known is None or known.size < size or (known.size == size
                                                      and len(known.note) < len(note)):
                self._latest[tenant_id] = StoredCheckpoint(size, root, note)

    def covering(self, tenant_id: str, tenant: str, index: int) -> StoredCheckpoint:
        """The latest checkpoint of the log, signed now if it does not hold leaf
        ``index`` yet (nor does one exist)."""
        latest = self._latest.get(tenant_id)  # a checkpoint this process signed or saw
        if latest is None or latest.size <= index:
            latest = self.rows.checkpoint(tenant_id)
            if latest is not None:
                self._latest[tenant_id] = latest
        if latest is not None and latest.size > index:
            return latest
        head = self.rows.size(tenant_id)
        if head is None or head[0] <= index:
            raise Unavailable("the log does not hold that record yet; retry")
        with self._lock:
            row = self._signed(tenant_id, tenant, *head)
            self.rows.store_checkpoints([row])
            if self.witnesses:
                self._unwitnessed[tenant_id] = row
        stored = self.rows.checkpoint(tenant_id)
        assert stored is not None
        self._latest[tenant_id] = stored
        return stored

    # ---- witnesses (tlog-witness, the log's side) ----------------------------------------

    def _witness(self, tenant_id: str, size: int, root: bytes, note: str) -> None:
        cosigned = note
        for witness in self.witnesses:
            try:
                lines = self._submit(witness, tenant_id, size, note)
            except Exception as error:  # a witness away: the checkpoint stands without it
                log.warning("witness %s did not cosign: %s", witness.url, type(error).__name__)
                continue
            if lines:
                cosigned += lines
        if cosigned != note:
            row = (tenant_id, size, root, cosigned, format_time(utc_now()))
            self.rows.store_checkpoints([row])
            self._remember([row])

    def _submit(self, witness: Witness, tenant_id: str, size: int, note: str) -> str | None:
        assert self.post is not None
        old = self._witnessed.get((witness.url, tenant_id), 0)
        for _ in range(2):  # the second time from the size the witness said it holds
            if old > size:
                return None  # it cosigned a later checkpoint already (another process's)
            proof = [] if old == 0 else self.proofs.consistency(tenant_id, old, size)
            if len(proof) > MAX_WITNESS_PROOF:
                return None
            body = f"old {old}\n" + "".join(
                f"{base64.b64encode(h).decode()}\n" for h in proof) + "\n" + note
            status, text = self.post(f"{witness.url}/add-checkpoint", body.encode())
            if status == 409 and text.strip().isdigit() and int(text.strip()) != old:
                old = int(text.strip())
                continue
            if status != 200:
                log.warning("witness %s refused a checkpoint (HTTP %d)", witness.url, status)
                return None
            self._witnessed[(witness.url, tenant_id)] = size
            open_note(note + text, [witness.key])  # attached only once it verifies
            return text
        return None
