"""Secrets of one tenant: values, versions, listings and transactions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response

from secrets_ledger.api.deps import (
    READ_METADATA,
    READ_VALUES,
    WRITE_VALUES,
    Caller,
    Context,
    LedgerDep,
    authorize,
    if_version,
    parse_precondition,
)
from secrets_ledger.api.schemas import (
    DestroyOut,
    DestroyRequest,
    KeyItemOut,
    KeyListOut,
    KeyVersion,
    RollbackRequest,
    SecretOut,
    SecretPut,
    TransactionOut,
    TransactionRequest,
    VersionOut,
    VersionsOut,
    WriteOut,
)
from secrets_ledger.domain.errors import InvalidRequest
from secrets_ledger.domain.tenant import Change, DeleteKey, SetValue
from secrets_ledger.service.clock import format_time, parse_time

router = APIRouter(prefix="/v1/tenants/{tenant}", tags=["secrets"])
Limit = Annotated[int, Query(ge=1, le=1000)]
IfMatch = Annotated[str | None, Header()]


def _etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


def _time(text: str | None) -> str | None:
    return None if text is None else format_time(parse_time(text))


# Sub-resources come first: "{key:path}" would otherwise swallow ".../versions".
@router.get("/secrets/{key:path}/versions")
def list_versions(tenant: str, key: str, caller: Caller, ledger: LedgerDep) -> VersionsOut:
    authorize(caller, tenant, READ_METADATA)
    current, items = ledger.list_versions(tenant, key)
    return VersionsOut(key=key, current_version=current, items=[
        VersionOut(version=i.version, created_at=i.created_at, created_by=i.created_by,
                   state=i.state)  # type: ignore[arg-type]
        for i in items])


@router.post("/secrets/{key:path}/undelete")
def undelete_secret(tenant: str, key: str, caller: Caller, ctx: Context,
                    ledger: LedgerDep, response: Response) -> KeyVersion:
    authorize(caller, tenant, WRITE_VALUES)
    version = ledger.undelete_secret(tenant, key, ctx)
    _etag(response, version)
    return KeyVersion(key=key, version=version)


@router.post("/secrets/{key:path}/rollback")
def rollback_secret(tenant: str, key: str, body: RollbackRequest, caller: Caller,
                    ctx: Context, ledger: LedgerDep, response: Response) -> WriteOut:
    authorize(caller, tenant, WRITE_VALUES)
    written = ledger.rollback_secret(tenant, key, body.version, ctx)
    _etag(response, written.version)
    return WriteOut(key=key, version=written.version, created_at=written.created_at)


@router.post("/secrets/{key:path}/destroy")
def destroy_versions(tenant: str, key: str, body: DestroyRequest, caller: Caller,
                     ctx: Context, ledger: LedgerDep) -> DestroyOut:
    authorize(caller, tenant, WRITE_VALUES)
    ledger.destroy_versions(tenant, key, body.versions, ctx)
    return DestroyOut(key=key, versions=sorted(set(body.versions)))


@router.put("/secrets/{key:path}", status_code=200,
            responses={201: {"model": WriteOut, "description": "version 1 was created"}})
def put_secret(tenant: str, key: str, body: SecretPut, caller: Caller, ctx: Context,
               ledger: LedgerDep, response: Response, if_match: IfMatch = None,
               if_none_match: IfMatch = None) -> WriteOut:
    authorize(caller, tenant, WRITE_VALUES)
    precondition = parse_precondition(if_match, if_none_match)
    written = ledger.put_secret(tenant, key, body.value, body.metadata, precondition, ctx)
    response.status_code = 201 if written.created else 200
    _etag(response, written.version)
    return WriteOut(key=key, version=written.version, created_at=written.created_at)


@router.get("/secrets/{key:path}")
def get_secret(tenant: str, key: str, caller: Caller, ctx: Context, ledger: LedgerDep,
               response: Response, version: Annotated[int | None, Query(ge=1)] = None,
               at: str | None = None) -> SecretOut:
    authorize(caller, tenant, READ_VALUES)
    if version is not None and at is not None:
        raise InvalidRequest("ask for a version or a time, not both")
    secret = ledger.get_secret(tenant, key, ctx, version=version, at=_time(at))
    _etag(response, secret.version)
    return SecretOut(key=secret.key, version=secret.version, value=secret.value,
                     metadata=secret.metadata, created_at=secret.created_at,
                     created_by=secret.created_by)


@router.delete("/secrets/{key:path}", status_code=204)
def delete_secret(tenant: str, key: str, caller: Caller, ctx: Context, ledger: LedgerDep,
                  if_match: IfMatch = None) -> Response:
    authorize(caller, tenant, WRITE_VALUES)
    ledger.delete_secret(tenant, key, parse_precondition(if_match, None), ctx)
    return Response(status_code=204)


@router.get("/secrets")
def list_keys(tenant: str, caller: Caller, ledger: LedgerDep, prefix: str = "",
              limit: Limit = 100, cursor: str | None = None,
              at: str | None = None) -> KeyListOut:
    authorize(caller, tenant, READ_METADATA)
    page = ledger.list_keys(tenant, prefix, limit, cursor, _time(at))
    return KeyListOut(items=[KeyItemOut(key=i.key, version=i.version, updated_at=i.updated_at)
                             for i in page.items], next_cursor=page.next_cursor)


@router.post("/transactions")
def transaction(tenant: str, body: TransactionRequest, caller: Caller, ctx: Context,
                ledger: LedgerDep) -> TransactionOut:
    authorize(caller, tenant, WRITE_VALUES)
    changes: list[Change] = []
    values: dict[str, Any] = {}
    for op in body.operations:
        if op.op == "set":
            changes.append(SetValue(op.key, metadata=op.metadata,
                                    precondition=if_version(op.if_version)))
            values[op.key] = op.value
        else:
            changes.append(DeleteKey(op.key, precondition=if_version(op.if_version)))
    results = ledger.write_secrets(tenant, changes, values, ctx)
    return TransactionOut(results=[KeyVersion(key=r.key, version=r.version) for r in results])
