"""Request and response bodies. Input and output are separate classes, and no listing
class has a ``value`` field, so a listing cannot carry a value by construction."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TenantCreate(Input):
    tenant: str


class TokenCreate(Input):
    role: Literal["writer", "reader", "auditor"]
    ttl_seconds: int | None = None
    description: Annotated[str, Field(max_length=256)] = ""


class SecretPut(Input):
    value: Any
    metadata: dict[str, str] | None = None


class RollbackRequest(Input):
    version: int


class DestroyRequest(Input):
    versions: Annotated[list[int], Field(min_length=1, max_length=1000)]


class SetOperation(Input):
    op: Literal["set"]
    key: str
    value: Any
    metadata: dict[str, str] | None = None
    if_version: int | None = None


class DeleteOperation(Input):
    op: Literal["delete"]
    key: str
    if_version: int | None = None


class TransactionRequest(Input):
    operations: Annotated[
        list[Annotated[SetOperation | DeleteOperation, Field(discriminator="op")]],
        Field(min_length=1, max_length=100),
    ]


class TenantOut(BaseModel):
    tenant: str
    created_at: str


class TenantList(BaseModel):
    items: list[TenantOut]


class TokenOut(BaseModel):
    token: str
    token_id: str
    role: str
    tenant: str | None
    expires_at: str | None


class TokenRecordOut(BaseModel):
    """A token as listed: never the token, nor its hash."""

    token_id: str
    role: str
    tenant: str | None
    description: str
    created_at: str
    created_by: str | None
    expires_at: str | None
    revoked_at: str | None
    revoked_by: str | None


class TokenList(BaseModel):
    items: list[TokenRecordOut]


class KeyVersionOut(BaseModel):
    key_version: int


class ShredOut(BaseModel):
    tenant: str
    shredded_at: str


class WriteOut(BaseModel):
    key: str
    version: int
    created_at: str


class SecretOut(BaseModel):
    key: str
    version: int
    value: Any
    metadata: dict[str, str] | None
    created_at: str
    created_by: str


class KeyVersion(BaseModel):
    key: str
    version: int


class DestroyOut(BaseModel):
    key: str
    versions: list[int]


class VersionOut(BaseModel):
    version: int
    created_at: str
    created_by: str
    state: Literal["active", "deleted", "destroyed"]


class VersionsOut(BaseModel):
    key: str
    current_version: int
    items: list[VersionOut]


class KeyItemOut(BaseModel):
    key: str
    version: int
    updated_at: str


class KeyListOut(BaseModel):
    items: list[KeyItemOut]
    next_cursor: str | None


class TransactionOut(BaseModel):
    results: list[KeyVersion]


class AuditItemOut(BaseModel):
    position: int
    at: str
    action: str
    key: str | None
    version: int | None
    actor: str
    request_id: str


class AuditOut(BaseModel):
    items: list[AuditItemOut]
    next_cursor: str | None


class VerifyOut(BaseModel):
    ok: bool
    events: int
    head: str | None = None
    first_bad_position: int | None = None
    reason: str | None = None


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    code: str


class ChangeOut(BaseModel):
    """One change of the feed: metadata only (a listing class: no value field)."""

    position: int
    tenant: str
    at: str
    action: str
    key: str | None
    version: int | None
    actor: str
    request_id: str
    stream_version: int
    log_index: int | None


class ChangesOut(BaseModel):
    items: list[ChangeOut]
    cursor: str  # resume after this: ``after=<cursor>`` or ``Last-Event-ID``
