"""Which leaves each stored record adds to which tenant's transparency log.

A tenant event adds one leaf to its tenant's log: ``E`` and its link hash (which covers
ciphertext and metadata only). A record of value reads adds one leaf to the log of each
tenant whose reads it holds, covering that tenant's reads only, so that a tenant's
auditor learns nothing of another tenant. The leaves' definitions are the verifier's
(``verifier.records``): the server stores what an auditor recomputes.
"""

from __future__ import annotations

from typing import Any

from secrets_ledger.domain.reads import MovedReads, ValueRead, ValueReads
from secrets_ledger.domain.tenant import Tenant, tenant_text
from secrets_ledger.verifier.records import EVENT_LEAF, READS_LEAF, reads_digest

READ_RECORDS = (ValueReads.Recorded, ValueRead.Recorded)
"""The records of the writers' read chains, stored in no tenant's stream, that add leaves
to tenants' logs (as many as the tenants whose reads they hold)."""
LEAF_RECORDS = (*READ_RECORDS, MovedReads.Copied)
"""Every record of reads that adds leaves: a tenant's copied with it from another group
too (one tenant's reads, outside the chains)."""

Leaf = tuple[str, str, int, bytes]
"""(tenant id, record id, record version, leaf): a tenant event's record id is ``''``
(its tenant's own stream) and its version the stream version; a read record's are its
own."""


def event_leaf(event: Tenant.Event) -> bytes:
    return EVENT_LEAF + bytes.fromhex(event.hash)


def tenant_reads(event: Any) -> dict[str, list[dict[str, Any]]]:
    """The reads a read record holds, by tenant, in their order."""
    rows: list[dict[str, Any]]
    if isinstance(event, ValueRead.Recorded):
        rows = [{"tenant_id": event.tenant_id, "key": event.key, "version": event.version,
                 "actor": event.actor, "request_id": event.request_id}]
    else:
        rows = event.reads
    by_tenant: dict[str, list[dict[str, Any]]] = {}
    for read in rows:
        by_tenant.setdefault(read["tenant_id"], []).append(read)
    return by_tenant


def reads_record(event: Any, tenant_id: str) -> dict[str, Any]:
    """The record of one tenant's part of a read record, as auditors are served it."""
    return {"kind": "reads", "record_id": str(event.originator_id),
            "at": event.timestamp.isoformat(),
            "reads": [{"key": read["key"], "version": read["version"], "actor": read["actor"],
                       "request_id": read["request_id"]}
                      for read in tenant_reads(event).get(tenant_id, [])]}


def leaves_of(event: Any) -> list[Leaf]:
    """The leaves a stored event adds (none for an event of no tenant's)."""
    if isinstance(event, Tenant.Event):
        return [(tenant_text(event.originator_id), "", event.originator_version,
                 event_leaf(event))]
    if isinstance(event, LEAF_RECORDS):
        record_id, at = str(event.originator_id), event.timestamp.isoformat()
        return [(tenant_id, record_id, event.originator_version,
                 READS_LEAF + reads_digest(record_id, at, reads))
                for tenant_id, reads in tenant_reads(event).items()]
    return []


WRONG_SHAPE = "the record has the wrong shape to make its leaf"


def stored_leaves(event: Any) -> list[Leaf] | None:
    """``leaves_of`` a stored record, or None when it was edited into a shape that makes
    none (a field of another type: the checks name it ``WRONG_SHAPE``)."""
    try:
        return leaves_of(event)
    except Exception:
        return None


def other_root(tenant_id: str, size: int) -> str:
    return (f"tenant {tenant_id}'s signed checkpoint of size {size} has another root than"
            " its records")
