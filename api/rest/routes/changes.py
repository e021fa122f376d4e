"""The change feed: a page, a long poll (``wait``), or Server-Sent Events (``Accept:
text/event-stream``, resumed with ``Last-Event-ID``); metadata only, never a value."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Collection
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from secrets_ledger.api.http_guard import BODY_WRITER
from secrets_ledger.api.rest.deps import Caller, LedgerDep, json_response, text_header
from secrets_ledger.api.rest.routes.audit import ChangeAction
from secrets_ledger.api.rest.routes.secrets import Limit
from secrets_ledger.api.rest.schemas import ChangeOut, ChangesOut
from secrets_ledger.core.changes import MAX_WAIT, ChangePage
from secrets_ledger.core.feed_ports import ChangeRow
from secrets_ledger.core.ledger import Ledger
from secrets_ledger.core.principals import Credential
from secrets_ledger.domain.errors import LedgerError

router = APIRouter(tags=["changes"])
STREAM = "text/event-stream"
Wait = Annotated[float, Query(ge=0, le=MAX_WAIT, description="seconds to wait for a change")]
Actions = Annotated[list[ChangeAction] | None, Query(alias="action")]
LastEventId = Annotated[str | None, Header(description="SSE: resume after this cursor")]
_DESCRIBED: dict[int | str, dict[str, Any]] = {200: {
    "content": {STREAM: {"schema": {"type": "string"}}},
    "description": "a page (JSON), or events (SSE): each event's `id` is its cursor"}}


@router.get("/v1/tenants/{tenant}/changes", response_model=ChangesOut, responses=_DESCRIBED)
async def tenant_changes(tenant: str, request: Request, caller: Caller, ledger: LedgerDep,
                         after: str = "0", prefix: str = "", action: Actions = None,
                         limit: Limit = 100, wait: Wait = 0,
                         last_event_id: LastEventId = None) -> Response:
    """The tenant's changes after the cursor ``after`` (readers, auditors, admins)."""
    return await _changes(request, ledger, caller, tenant, last_event_id or after, prefix,
                          action, limit, wait)


@router.get("/v1/changes", response_model=ChangesOut, responses=_DESCRIBED)
async def all_changes(request: Request, caller: Caller, ledger: LedgerDep, after: str = "0",
                      prefix: str = "", action: Actions = None, limit: Limit = 100,
                      wait: Wait = 0, last_event_id: LastEventId = None) -> Response:
    """Every tenant's changes after the cursor ``after``, in one order (admins)."""
    return await _changes(request, ledger, caller, None, last_event_id or after, prefix,
                          action, limit, wait)


async def _changes(request: Request, ledger: Ledger, caller: Credential, tenant: str | None,
                   after: str, prefix: str, actions: Collection[str] | None, limit: int,
                   wait: float) -> Response:
    if STREAM in (text_header(request.scope, b"accept") or ""):
        write = (request.scope.get("extensions") or {}).get(BODY_WRITER)
        pages = await ledger.changes.follow(
            caller, tenant, after=after, prefix=prefix, actions=actions, limit=limit,
            deliver=None if write is None else lambda rows, _cursor: write(_joined(rows)))
        return StreamingResponse(_events(pages), media_type=STREAM, headers={
            "Cache-Control": "no-store", "X-Accel-Buffering": "no"})
    page = await ledger.changes.page(caller, tenant, after=after, prefix=prefix,
                                     actions=actions, limit=limit, wait=wait)
    return json_response(ChangesOut(items=[_out(row) for row in page.items],
                                    cursor=page.cursor_text))


def _out(row: ChangeRow) -> ChangeOut:
    return ChangeOut(**row._asdict())


_RENDERED: dict[ChangeRow, bytes] = {}
RENDERED_KEPT = 50_000


def _event(row: ChangeRow) -> bytes:
    """The change's SSE event, rendered once for all the streams that carry it (kept by
    the whole row, not its position: each tenant group numbers its own positions)."""
    event = _RENDERED.get(row)
    if event is None:
        if len(_RENDERED) >= RENDERED_KEPT:
            _RENDERED.clear()
        event = _RENDERED[row] = b"id: %d\ndata: %s\n\n" % (
            row.position, _out(row).model_dump_json().encode())
    return event


_JOINED: dict[int, tuple[list[ChangeRow], bytes]] = {}


def _joined(items: list[ChangeRow]) -> bytes:
    """A page's events; the streams that follow alike share their pages' lists (the
    core's hub answers them once), and so their bytes."""
    cached = _JOINED.get(id(items))
    if cached is not None and cached[0] is items:
        return cached[1]
    if len(_JOINED) >= 1000:
        _JOINED.clear()
    joined = b"".join(map(_event, items))
    _JOINED[id(items)] = (items, joined)  # the list is kept: its id is not reused meanwhile
    return joined


async def _events(pages: AsyncIterator[ChangePage]) -> AsyncIterator[bytes]:
    """Each change an event whose id is its cursor; a heartbeat (an event of its own
    type, which ``EventSource.onmessage`` ignores) carries the cursor past what the
    filter skipped. A token revoked mid-stream ends it with an ``error`` event."""
    yield b"retry: 1000\n\n"
    try:
        async for page in pages:
            if page.ids is not None:  # tenant groups' feed of every tenant: own cursors
                yield b"".join(b"id: %s\ndata: %s\n\n" % (
                    cursor.encode(), _out(row).model_dump_json().encode())
                    for row, cursor in zip(page.items, page.ids, strict=True))
            elif page.items:
                yield _joined(page.items)
            if not page.items:
                yield b'event: heartbeat\nid: %s\ndata: {"cursor": "%s"}\n\n' % (
                    (page.cursor_text.encode(),) * 2)
    except LedgerError as error:
        body = json.dumps({"code": error.code, "detail": error.detail})
        yield f"event: error\ndata: {body}\n\n".encode()
