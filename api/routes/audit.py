"""The audit trail and chain verification: for auditors (and admins), never values."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from secrets_ledger.api.deps import AUDIT, Caller, LedgerDep, authorize
from secrets_ledger.api.routes.secrets import Limit, _time
from secrets_ledger.api.schemas import AuditItemOut, AuditOut, VerifyOut
from secrets_ledger.service.queries import AuditFilter

router = APIRouter(prefix="/v1/tenants/{tenant}", tags=["audit"])
Action = Literal["tenant_opened", "write", "delete", "undelete", "destroy", "rollback", "read",
                 "key_rotated", "token_created", "token_revoked", "shredded"]


@router.get("/audit")
def audit_trail(tenant: str, caller: Caller, ledger: LedgerDep, key: str | None = None,
                actor: str | None = None, action: Annotated[Action | None, Query()] = None,
                since: str | None = None, until: str | None = None,
                cursor: str | None = None, limit: Limit = 100) -> AuditOut:
    authorize(caller, tenant, AUDIT)
    where = AuditFilter(key=key, actor=actor, action=action, since=_time(since),
                        until=_time(until))
    page = ledger.audit(tenant, where, limit, cursor)
    return AuditOut(items=[AuditItemOut(position=i.position, at=i.at, action=i.action,
                                        key=i.key, version=i.version, actor=i.actor,
                                        request_id=i.request_id) for i in page.items],
                    next_cursor=page.next_cursor)


@router.get("/verify", response_model_exclude_none=True)
def verify_chain(tenant: str, caller: Caller, ledger: LedgerDep) -> VerifyOut:
    authorize(caller, tenant, AUDIT)
    return VerifyOut(**ledger.verify(tenant).as_dict())
