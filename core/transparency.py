"""The tenants' transparency logs, as their readers and auditors query them: the latest
signed checkpoint, inclusion and consistency proofs, the records behind a range of
leaves (ciphertext and metadata, never a value), and the proof of a value just read.

Proofs and checkpoints are hashes: any principal of the tenant who may list its keys may
have them. The records behind the leaves say who read what, as the audit trail does:
auditors (and admins) only. Nobody of another tenant learns anything, not even a size.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from secrets_ledger.core.bounded_cache import BoundedCache
from secrets_ledger.core.checkpoints import Checkpointer
from secrets_ledger.core.door import Door
from secrets_ledger.core.log_ports import LogRows, LogSigner, StoredCheckpoint
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.principals import Credential
from secrets_ledger.core.reads import SecretValue
from secrets_ledger.domain import rules
from secrets_ledger.domain.errors import InvalidRequest, TenantNotFound, Unavailable
from secrets_ledger.domain.log_leaves import reads_record
from secrets_ledger.domain.tenant import Tenant, tenant_id_for

MAX_LEAVES = 256
WRITES_CACHED_BYTES = 16 * 1024 * 1024
_FRAMING = frozenset({"hash", "originator_id", "originator_version", "timestamp",
                      "originator_topic"})


@dataclass(frozen=True)
class Proof:
    size: int
    hashes: list[bytes]
    checkpoint: str | None = None  # for an inclusion proof: the note it leads to


@dataclass(frozen=True)
class LeafRecord:
    leaf_index: int
    leaf: bytes  # the stored leaf hash (level 0)
    record: dict[str, Any]  # ``verifier.leaf_of`` recomputes the leaf from it


@dataclass(frozen=True)
class ValueProof:
    """What binds a value just read to the log: the event that wrote it, its leaf, the
    opening of its commitment, and the inclusion proof to a signed checkpoint."""

    event_version: int
    leaf_index: int
    record: dict[str, Any]
    opening: bytes = field(repr=False)  # never in a log line, as the value
    value_json: str = field(repr=False)
    proof: Proof = field(repr=False)


def event_record(event: Tenant.Event) -> dict[str, Any]:
    return {"kind": "event", "tenant_id": str(event.originator_id),
            "version": event.originator_version, "type": type(event).__qualname__,
            "at": event.timestamp.isoformat(), "hash": event.hash,
            "fields": {k: v for k, v in vars(event).items() if k not in _FRAMING}}


class TransparencyLog:
    def __init__(self, door: Door, rows: LogRows, signer: LogSigner,
                 checkpointer: Checkpointer) -> None:
        self.door = door
        self.rows = rows
        self.signer = signer
        self.checkpointer = checkpointer
        self.proofs = checkpointer.proofs  # one cache of subtrees per process
        self._writes: BoundedCache[tuple[str, str, int], tuple[int, int, dict[str, Any]]] = (
            BoundedCache(WRITES_CACHED_BYTES))
        self._inclusions: BoundedCache[tuple[str, int, int], list[bytes]] = BoundedCache(
            1024 * 1024)

    def log_keys(self) -> list[str]:
        """The log key's verifier keys (in use first, then retired ones): public."""
        return self.signer.published()

    async def rotate_log_key(self, caller: Credential) -> str:
        """A new log key signs from now on (servers take it within a heartbeat); the old
        one's verifier key stays published. Returns the new verifier key."""
        return await self.door.in_thread(self._rotate_log_key, caller)

    def _rotate_log_key(self, caller: Credential) -> str:
        self.door.admit(caller, None, UseCase.ROTATE_LOG_KEY)
        return self.signer.rotate()

    def _tenant(self, caller: Credential, tenant: str, use_case: UseCase) -> str:
        self.door.admit(caller, tenant, use_case)
        rules.check_tenant_name(tenant)
        tenant_id = str(tenant_id_for(tenant))
        if not self.rows.log_size(tenant_id):
            raise TenantNotFound("no such tenant")
        return tenant_id

    async def checkpoint(self, caller: Credential, tenant: str) -> StoredCheckpoint:
        return await self.door.in_thread(self._checkpoint, caller, tenant)

    def _checkpoint(self, caller: Credential, tenant: str) -> StoredCheckpoint:
        tenant_id = self._tenant(caller, tenant, UseCase.READ_LOG_PROOFS)
        latest = self.rows.checkpoint(tenant_id)
        return latest or self.checkpointer.covering(tenant_id, tenant, 0)

    async def inclusion(self, caller: Credential, tenant: str, index: int, size: int) -> Proof:
        return await self.door.in_thread(self._inclusion, caller, tenant, index, size)

    def _inclusion(self, caller: Credential, tenant: str, index: int, size: int) -> Proof:
        tenant_id = self._tenant(caller, tenant, UseCase.READ_LOG_PROOFS)
        self._check_size(tenant_id, size)
        return Proof(size, self.proofs.inclusion(tenant_id, index, size))

    async def consistency(self, caller: Credential, tenant: str, old: int, size: int) -> Proof:
        return await self.door.in_thread(self._consistency, caller, tenant, old, size)

    def _consistency(self, caller: Credential, tenant: str, old: int, size: int) -> Proof:
        tenant_id = self._tenant(caller, tenant, UseCase.READ_LOG_PROOFS)
        self._check_size(tenant_id, size)
        return Proof(size, self.proofs.consistency(tenant_id, old, size))

    def _check_size(self, tenant_id: str, size: int) -> None:
        if not 0 < size <= self.rows.log_size(tenant_id):
            raise InvalidRequest("the tree size must be between 1 and the log's size")

    async def leaves(self, caller: Credential, tenant: str, start: int, end: int
                     ) -> list[LeafRecord]:
        return await self.door.in_thread(self._leaves, caller, tenant, start, end)

    def _leaves(self, caller: Credential, tenant: str, start: int, end: int
                ) -> list[LeafRecord]:
        tenant_id = self._tenant(caller, tenant, UseCase.READ_LOG_LEAVES)
        if not 0 <= start < end or end - start > MAX_LEAVES:
            raise InvalidRequest(f"ask for 1 to {MAX_LEAVES} leaves, start < end")
        found = []
        for stored in self.rows.leaves(tenant_id, start, end):
            stream = UUID(tenant_id if stored.record_id == "" else stored.record_id)
            event = self.door.streams.stored_event(stream, stored.record_version)
            if event is None:
                raise Unavailable("a logged record is missing from the store; run verify")
            record = (event_record(event) if stored.record_id == ""
                      else reads_record(event, tenant_id))
            found.append(LeafRecord(stored.leaf_index, stored.hashes[:32], record))
        return found

    async def value_proof(self, caller: Credential, tenant: str, secret: SecretValue
                          ) -> ValueProof:
        """The proof of a value the caller has just read (``Reads.value``)."""
        return await self.door.in_thread(self._value_proof, caller, tenant, secret)

    def _value_proof(self, caller: Credential, tenant: str, secret: SecretValue) -> ValueProof:
        self.door.admit(caller, tenant, UseCase.READ_LOG_PROOFS)
        tenant_id = str(tenant_id_for(tenant))
        if secret.opening is None or secret.stored is None:
            raise Unavailable("the value was read without its opening; read it again")
        version, index, record = self._written(tenant_id, secret.key, secret.version)
        checkpoint = self.checkpointer.covering(tenant_id, tenant, index)
        proof = Proof(checkpoint.size, self._inclusion_at(tenant_id, index, checkpoint.size),
                      checkpoint.note)
        return ValueProof(version, index, record, secret.opening,
                          secret.stored.decode("utf-8"), proof)

    def _written(self, tenant_id: str, key: str, version: int
                 ) -> tuple[int, int, dict[str, Any]]:
        """(stream version, leaf index, record) of the event that wrote a version:
        immutable, so kept (bounded by bytes) for the reads of that version to come."""
        found = self._writes.get((tenant_id, key, version))
        if found is not None:
            return found
        position = self.door.views.version_position(tenant_id, key, version)
        event = None if position is None else self.door.streams.event_at(position)
        if event is None:
            raise Unavailable("the version's event is not in the views yet; retry")
        index = self.rows.leaf_of(tenant_id, "", event.originator_version)
        if index is None:
            raise Unavailable("the version's event is not in the log; run verify")
        found = (event.originator_version, index, event_record(event))
        self._writes.put((tenant_id, key, version), found,
                         sum(len(str(v)) for v in found[2]["fields"].values()))
        return found

    def _inclusion_at(self, tenant_id: str, index: int, size: int) -> list[bytes]:
        found = self._inclusions.get((tenant_id, index, size))
        if found is None:
            found = self.proofs.inclusion(tenant_id, index, size)
            self._inclusions.put((tenant_id, index, size), found, 32 * len(found))
        return found


def b64(hashes: list[bytes]) -> list[str]:
    return [base64.b64encode(h).decode("ascii") for h in hashes]
