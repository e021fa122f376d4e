"""Tenants, their tokens and keys: admin operations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response

from secrets_ledger.api.deps import ADMIN, Caller, Context, LedgerDep, authorize, get_tokens
from secrets_ledger.api.schemas import (
    KeyVersionOut,
    ShredOut,
    TenantCreate,
    TenantList,
    TenantOut,
    TokenCreate,
    TokenOut,
)
from secrets_ledger.domain.errors import InvalidRequest
from secrets_ledger.service.tokens import TokenStore

router = APIRouter(prefix="/v1/tenants", tags=["tenants"])
Tokens = Annotated[TokenStore, Depends(get_tokens)]


@router.post("", status_code=201)
def create_tenant(body: TenantCreate, caller: Caller, ctx: Context,
                  ledger: LedgerDep) -> TenantOut:
    authorize(caller, None, ADMIN)
    return TenantOut(tenant=body.tenant, created_at=ledger.open_tenant(body.tenant, ctx))


@router.get("")
def list_tenants(caller: Caller, ledger: LedgerDep) -> TenantList:
    authorize(caller, None, ADMIN)
    return TenantList(items=[TenantOut(tenant=name, created_at=created)
                             for name, created, _ in ledger.list_tenants()])


@router.post("/{tenant}/tokens", status_code=201)
def create_token(tenant: str, body: TokenCreate, caller: Caller, ctx: Context,
                 tokens: Tokens) -> TokenOut:
    authorize(caller, tenant, ADMIN)
    issued = tokens.issue(body.role, tenant, body.ttl_seconds, body.description, ctx)
    return TokenOut(token=issued.token, token_id=issued.token_id, role=issued.role,
                    tenant=issued.tenant, expires_at=issued.expires_at)


@router.delete("/{tenant}/tokens/{token_id}", status_code=204)
def revoke_token(tenant: str, token_id: str, caller: Caller, ctx: Context,
                 tokens: Tokens) -> Response:
    authorize(caller, tenant, ADMIN)
    tokens.revoke(tenant, token_id, ctx)
    return Response(status_code=204)


@router.post("/{tenant}/keys/rotate")
def rotate_tenant_key(tenant: str, caller: Caller, ctx: Context,
                      ledger: LedgerDep) -> KeyVersionOut:
    authorize(caller, tenant, ADMIN)
    return KeyVersionOut(key_version=ledger.rotate_tenant_key(tenant, ctx))


@router.delete("/{tenant}")
def shred_tenant(tenant: str, caller: Caller, ctx: Context, ledger: LedgerDep,
                 x_confirm_shred: Annotated[str | None, Header()] = None) -> ShredOut:
    authorize(caller, tenant, ADMIN)
    if x_confirm_shred != tenant:
        raise InvalidRequest("shredding needs the header X-Confirm-Shred: <tenant>")
    return ShredOut(tenant=tenant, shredded_at=ledger.shred_tenant(tenant, ctx))
