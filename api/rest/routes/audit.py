"""The audit trail and chain verification: auditors and admins."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from secrets_ledger.api.rest.deps import Caller, LedgerDep, json_response
from secrets_ledger.api.rest.routes.secrets import Limit
from secrets_ledger.api.rest.schemas import AuditItemOut, AuditOut, VerifyOut

router = APIRouter(prefix="/v1/tenants/{tenant}", tags=["audit"])
ChangeAction = Literal["tenant_opened", "write", "delete", "undelete", "destroy", "rollback",
                       "key_rotated", "token_created", "token_revoked", "shredded",
                       "metadata_updated", "labels_moved", "mount_enabled",
                       "mount_configured", "mount_disabled", "moved_out",
                       "moved_in"]
Action = Literal[ChangeAction, "read"]


@router.get("/audit", response_model=AuditOut)
async def audit_trail(tenant: str, caller: Caller, ledger: LedgerDep, key: str | None = None,
                      actor: str | None = None,
                      action: Annotated[Action | None, Query()] = None,
                      since: str | None = None, until: str | None = None,
                      cursor: str | None = None, limit: Limit = 100) -> Response:
    page = await ledger.history.audit(caller, tenant, key=key, actor=actor, action=action,
                                      since=since, until=until, limit=limit, cursor=cursor)
    return json_response(AuditOut(items=[
        AuditItemOut(position=i.position, at=i.at, action=i.action, key=i.key,
                     version=i.version, actor=i.actor, request_id=i.request_id)
        for i in page.items], next_cursor=page.next_cursor))


@router.get("/verify", response_model=VerifyOut, response_model_exclude_none=True)
async def verify_chain(tenant: str, caller: Caller, ledger: LedgerDep) -> Response:
    check = await ledger.history.verify(caller, tenant)
    return Response(VerifyOut(**check.as_dict()).model_dump_json(exclude_none=True),
                    media_type="application/json")
