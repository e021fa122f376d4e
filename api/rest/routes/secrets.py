"""Secrets of one tenant: values, versions, listings and transactions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response

from secrets_ledger.api.rest.deps import (
    Caller,
    Info,
    LedgerDep,
    credential_of,
    if_version,
    json_response,
    judged,
    parse_precondition,
    request_info_of,
    text_header,
)
from secrets_ledger.api.rest.log_schemas import SecretWithProofOut, ValueProofOut
from secrets_ledger.api.rest.paths import rest_key
from secrets_ledger.api.rest.plain import (
    BEARER,
    body_of,
    flag,
    json_body,
    parameter,
    path_parameters,
    positive_int,
)
from secrets_ledger.api.rest.schemas import (
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
from secrets_ledger.core.ledger import Ledger
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.transparency import b64
from secrets_ledger.domain.changes import Change, DeleteKey, SetValue

router = APIRouter(prefix="/v1/tenants/{tenant}", tags=["secrets"])
# Routes are matched in order: the PUT and GET of one secret, which take nearly every
# request, come first; a path that matches a route but not its method goes on to the next.
Limit = Annotated[int, Query(ge=1, le=1000)]
IfMatch = Annotated[str | None, Header()]


@router.put("/secrets/{key:path}", status_code=200, response_model=WriteOut,
            responses={201: {"model": WriteOut, "description": "version 1 was created"}},
            openapi_extra={"security": BEARER, "requestBody": json_body(SecretPut),
                           "parameters": [
                               *path_parameters("tenant", "key"),
                               parameter("header", "If-Match", {"type": "string"},
                                         'write only if the key is at this version ("3"),'
                                         " or live (*)"),
                               parameter("header", "If-None-Match", {"type": "string"},
                                         "* : write only if the key is absent or deleted"),
                               parameter("header", "Idempotency-Key", {"type": "string"})]})
async def put_secret(request: Request) -> Response:
    # A plain route (plain.py): the request's parts are read here, not by FastAPI.
    tenant, key = request.path_params["tenant"], request.path_params["key"]
    ledger: Ledger = request.app.state.ledger
    caller = credential_of(request)
    body = await body_of(request, SecretPut, caller, ledger)
    info = await request_info_of(request, caller, ledger)
    if_match, if_none_match = (text_header(request.scope, b"if-match"),
                               text_header(request.scope, b"if-none-match"))
    precondition = None
    if if_match is not None or if_none_match is not None:
        precondition = await judged(ledger, caller, tenant, UseCase.WRITE_SECRETS,
                                    lambda: parse_precondition(if_match, if_none_match))
    await judged(ledger, caller, tenant, UseCase.WRITE_SECRETS, lambda: rest_key(key))
    written = await ledger.secrets.put(caller, tenant, key, body.value, body.metadata,
                                       precondition, info)
    return json_response(WriteOut.model_construct(key=key, version=written.version,
                                                  created_at=written.created_at),
                         status=201 if written.created else 200, etag=written.version)


# Sub-resources before the secret's own GET: "{key:path}" would swallow ".../versions".
@router.get("/secrets/{key:path}/versions", response_model=VersionsOut)
async def list_versions(tenant: str, key: str, caller: Caller, ledger: LedgerDep) -> Response:
    await judged(ledger, caller, tenant, UseCase.LIST_VERSIONS, lambda: rest_key(key))
    current, items = await ledger.reads.versions(caller, tenant, key)
    return json_response(VersionsOut(key=key, current_version=current, items=[
        VersionOut(version=i.version, created_at=i.created_at, created_by=i.created_by,
                   state=i.state)  # type: ignore[arg-type]
        for i in items]))


@router.get("/secrets/{key:path}", response_model=SecretWithProofOut,
            openapi_extra={"security": BEARER, "parameters": [
                *path_parameters("tenant", "key"),
                parameter("query", "version", {"type": "integer", "minimum": 1},
                          "this version rather than the current one"),
                parameter("query", "at", {"type": "string"},
                          "the version current at this RFC 3339 time"),
                parameter("query", "proof", {"type": "boolean"},
                          "with the proof that binds the value to the signed log")]})
async def get_secret(request: Request) -> Response:
    # A plain route (plain.py): the request's parts are read here, not by FastAPI.
    tenant, key = request.path_params["tenant"], request.path_params["key"]
    ledger: Ledger = request.app.state.ledger
    caller = credential_of(request)
    info = await request_info_of(request, caller, ledger)
    version = at = None
    proof = False
    if request.scope["query_string"]:
        version = await positive_int(request, "version", caller, ledger)
        at = request.query_params.get("at")
        proof = await flag(request, "proof", caller, ledger)
    await judged(ledger, caller, tenant, UseCase.READ_VALUE, lambda: rest_key(key))
    secret = await ledger.reads.value(caller, tenant, key, info, version=version, at=at)
    out = SecretOut.model_construct(
        key=secret.key, version=secret.version, value=secret.value, metadata=secret.metadata,
        created_at=secret.created_at, created_by=secret.created_by)
    if proof:
        bound = await ledger.transparency.value_proof(caller, tenant, secret)
        out = SecretWithProofOut.model_construct(**vars(out), proof=ValueProofOut(
            event_version=bound.event_version, leaf_index=bound.leaf_index,
            tree_size=bound.proof.size, record=bound.record, value_json=bound.value_json,
            opening=b64([bound.opening])[0], inclusion=b64(bound.proof.hashes),
            checkpoint=bound.proof.checkpoint or ""))
    return json_response(out, etag=secret.version)


@router.post("/secrets/{key:path}/undelete", response_model=KeyVersion)
async def undelete_secret(tenant: str, key: str, caller: Caller, info: Info,
                          ledger: LedgerDep) -> Response:
    await judged(ledger, caller, tenant, UseCase.UNDELETE_SECRET, lambda: rest_key(key))
    version = await ledger.secrets.undelete(caller, tenant, key, info)
    return json_response(KeyVersion(key=key, version=version), etag=version)


@router.post("/secrets/{key:path}/rollback", response_model=WriteOut)
async def rollback_secret(tenant: str, key: str, body: RollbackRequest, caller: Caller,
                          info: Info, ledger: LedgerDep) -> Response:
    await judged(ledger, caller, tenant, UseCase.ROLL_BACK_SECRET, lambda: rest_key(key))
    written = await ledger.secrets.roll_back(caller, tenant, key, body.version, info)
    return json_response(WriteOut(key=key, version=written.version,
                                  created_at=written.created_at), etag=written.version)


@router.post("/secrets/{key:path}/destroy", response_model=DestroyOut)
async def destroy_versions(tenant: str, key: str, body: DestroyRequest, caller: Caller,
                           info: Info, ledger: LedgerDep) -> Response:
    await judged(ledger, caller, tenant, UseCase.DESTROY_VERSIONS, lambda: rest_key(key))
    versions = await ledger.secrets.destroy(caller, tenant, key, body.versions, info)
    return json_response(DestroyOut(key=key, versions=versions))


@router.delete("/secrets/{key:path}", status_code=204)
async def delete_secret(tenant: str, key: str, caller: Caller, info: Info, ledger: LedgerDep,
                        if_match: IfMatch = None) -> Response:
    precondition = await judged(ledger, caller, tenant, UseCase.DELETE_SECRET,
                                lambda: parse_precondition(if_match, None))
    await judged(ledger, caller, tenant, UseCase.DELETE_SECRET, lambda: rest_key(key))
    await ledger.secrets.delete(caller, tenant, key, precondition, info)
    return Response(status_code=204)


@router.get("/secrets", response_model=KeyListOut)
async def list_keys(tenant: str, caller: Caller, ledger: LedgerDep, prefix: str = "",
                    limit: Limit = 100, cursor: str | None = None,
                    at: str | None = None) -> Response:
    page = await ledger.reads.keys(caller, tenant, prefix=prefix, limit=limit, cursor=cursor,
                                   at=at)
    return json_response(KeyListOut(items=[
        KeyItemOut(key=i.key, version=i.version, updated_at=i.updated_at)
        for i in page.items], next_cursor=page.next_cursor))


@router.post("/transactions", response_model=TransactionOut)
async def transaction(tenant: str, body: TransactionRequest, caller: Caller, info: Info,
                      ledger: LedgerDep) -> Response:
    changes: list[Change] = []
    values: dict[str, Any] = {}

    def parse() -> None:
        for op in body.operations:
            if op.op == "set":
                changes.append(SetValue(op.key, metadata=op.metadata,
                                        precondition=if_version(op.if_version)))
                values[op.key] = op.value
            else:
                changes.append(DeleteKey(op.key, precondition=if_version(op.if_version)))
        for change in changes:
            rest_key(change.key)

    await judged(ledger, caller, tenant, UseCase.WRITE_SECRETS, parse)
    results = await ledger.secrets.write(caller, tenant, changes, values, info)
    return json_response(TransactionOut(results=[KeyVersion(key=r.key, version=r.version)
                                                 for r in results]))


PLAIN = (put_secret, get_secret)
"""The plain routes of this router (``plain.PlainRoutes`` serves them)."""
