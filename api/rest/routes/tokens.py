"""Every token, admin tokens included: listed and revoked by an admin (the tenant-scoped
paths are in ``tenants``). A path names a token by its id, never by the token: paths
end up in logs."""

from __future__ import annotations

from fastapi import APIRouter, Response

from secrets_ledger.api.rest.deps import Caller, Info, LedgerDep, json_response, judged
from secrets_ledger.api.rest.schemas import TokenList, TokenRecordOut
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.tokens import check_token_id

router = APIRouter(prefix="/v1/tokens", tags=["tokens"])


@router.get("", response_model=TokenList)
async def list_all_tokens(caller: Caller, ledger: LedgerDep,
                          tenant: str | None = None) -> Response:
    records = await ledger.tokens.list_all(caller, tenant)
    return json_response(TokenList(items=[TokenRecordOut(**r._asdict()) for r in records]))


@router.delete("/{token_id}", status_code=204)
async def revoke_any_token(token_id: str, caller: Caller, info: Info,
                           ledger: LedgerDep) -> Response:
    await judged(ledger, caller, None, UseCase.REVOKE_ANY_TOKEN,
                 lambda: check_token_id(token_id))
    await ledger.tokens.revoke_any(caller, token_id, info)
    return Response(status_code=204)
