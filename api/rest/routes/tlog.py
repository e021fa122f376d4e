"""The tenants' transparency logs: the log key, checkpoints, proofs and leaves (issue 16)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from secrets_ledger.api.rest.deps import Caller, LedgerDep, json_response
from secrets_ledger.api.rest.log_schemas import (
    CheckpointOut,
    ConsistencyOut,
    InclusionOut,
    LeafOut,
    LeavesOut,
    LogKeysOut,
)
from secrets_ledger.core.transparency import MAX_LEAVES, b64

router = APIRouter(tags=["transparency log"])
Size = Annotated[int, Query(ge=1, le=2**62)]
Index = Annotated[int, Query(ge=0, le=2**62)]


@router.get("/v1/log-key", response_model=LogKeysOut)
async def log_key(ledger: LedgerDep) -> Response:
    """The public keys that sign checkpoints (no token needed: they are public)."""
    return json_response(LogKeysOut(log_keys=ledger.transparency.log_keys(),
                                    origin_prefix=ledger.checkpointer.origin("")))


@router.get("/v1/tenants/{tenant}/log/checkpoint", response_model=CheckpointOut)
async def checkpoint(tenant: str, caller: Caller, ledger: LedgerDep) -> Response:
    latest = await ledger.transparency.checkpoint(caller, tenant)
    return json_response(CheckpointOut(tree_size=latest.size, root_hash=b64([latest.root])[0],
                                       checkpoint=latest.note))


@router.get("/v1/tenants/{tenant}/log/inclusion", response_model=InclusionOut)
async def inclusion(tenant: str, caller: Caller, ledger: LedgerDep, index: Index,
                    size: Size) -> Response:
    proof = await ledger.transparency.inclusion(caller, tenant, index, size)
    return json_response(InclusionOut(leaf_index=index, tree_size=size,
                                      proof=b64(proof.hashes)))


@router.get("/v1/tenants/{tenant}/log/consistency", response_model=ConsistencyOut)
async def consistency(tenant: str, caller: Caller, ledger: LedgerDep, old: Size,
                      size: Size) -> Response:
    proof = await ledger.transparency.consistency(caller, tenant, old, size)
    return json_response(ConsistencyOut(old_size=old, tree_size=size,
                                        proof=b64(proof.hashes)))


@router.get("/v1/tenants/{tenant}/log/leaves", response_model=LeavesOut)
async def leaves(tenant: str, caller: Caller, ledger: LedgerDep, start: Index,
                 end: Annotated[int, Query(ge=1, le=2**62,
                                           description=f"exclusive; at most {MAX_LEAVES}"
                                                       " leaves a page")]) -> Response:
    found = await ledger.transparency.leaves(caller, tenant, start, end)
    return json_response(LeavesOut(leaves=[
        LeafOut(leaf_index=leaf.leaf_index, leaf_hash=b64([leaf.leaf])[0], record=leaf.record)
        for leaf in found]))
