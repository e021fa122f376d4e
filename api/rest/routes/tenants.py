"""Tenants, their tokens and keys: admin operations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response

from secrets_ledger.api.rest.deps import Caller, Info, LedgerDep, json_response, judged
from secrets_ledger.api.rest.schemas import (
    KeyVersionOut,
    ShredOut,
    TenantCreate,
    TenantList,
    TenantOut,
    TokenCreate,
    TokenList,
    TokenOut,
    TokenRecordOut,
)
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.tokens import check_token_id
from secrets_ledger.domain.errors import InvalidRequest

router = APIRouter(prefix="/v1/tenants", tags=["tenants"])


@router.post("", status_code=201, response_model=TenantOut)
async def create_tenant(body: TenantCreate, caller: Caller, info: Info,
                        ledger: LedgerDep) -> Response:
    created_at = await ledger.tenants.open(caller, body.tenant, info)
    return json_response(TenantOut(tenant=body.tenant, created_at=created_at), status=201)


@router.get("", response_model=TenantList)
async def list_tenants(caller: Caller, ledger: LedgerDep) -> Response:
    tenants = await ledger.tenants.list_all(caller)
    return json_response(TenantList(items=[TenantOut(tenant=t.tenant, created_at=t.created_at)
                                           for t in tenants]))


@router.post("/{tenant}/tokens", status_code=201, response_model=TokenOut)
async def create_token(tenant: str, body: TokenCreate, caller: Caller, info: Info,
                       ledger: LedgerDep) -> Response:
    issued = await ledger.tokens.issue(caller, body.role, tenant, body.ttl_seconds,
                                       body.description, info)
    return json_response(TokenOut(token=issued.token, token_id=issued.token_id,
                                  role=issued.role, tenant=issued.tenant,
                                  expires_at=issued.expires_at), status=201)


@router.get("/{tenant}/tokens", response_model=TokenList)
async def list_tokens(tenant: str, caller: Caller, ledger: LedgerDep) -> Response:
    records = await ledger.tokens.list_tenant(caller, tenant)
    return json_response(TokenList(items=[TokenRecordOut(**r._asdict()) for r in records]))


@router.delete("/{tenant}/tokens/{token_id}", status_code=204)
async def revoke_token(tenant: str, token_id: str, caller: Caller, info: Info,
                       ledger: LedgerDep) -> Response:
    await judged(ledger, caller, tenant, UseCase.REVOKE_TOKEN, lambda: check_token_id(token_id))
    await ledger.tokens.revoke(caller, tenant, token_id, info)
    return Response(status_code=204)


@router.post("/{tenant}/keys/rotate", response_model=KeyVersionOut)
async def rotate_tenant_key(tenant: str, caller: Caller, info: Info,
                            ledger: LedgerDep) -> Response:
    return json_response(KeyVersionOut(
        key_version=await ledger.tenants.rotate_key(caller, tenant, info)))


def _confirmed(tenant: str, confirmation: str | None) -> None:
    if confirmation != tenant:
        raise InvalidRequest("shredding needs the header X-Confirm-Shred: <tenant>")


@router.delete("/{tenant}", response_model=ShredOut)
async def shred_tenant(tenant: str, caller: Caller, info: Info, ledger: LedgerDep,
                       x_confirm_shred: Annotated[str | None, Header()] = None) -> Response:
    await judged(ledger, caller, tenant, UseCase.SHRED_TENANT,
                 lambda: _confirmed(tenant, x_confirm_shred))
    return json_response(ShredOut(tenant=tenant,
                                  shredded_at=await ledger.tenants.shred(caller, tenant, info)))
