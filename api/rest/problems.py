"""problem+json (RFC 9457) for every error: the REST API's table from the core's error
codes to HTTP statuses."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from secrets_ledger.domain.errors import LedgerError, Unauthorized

log = logging.getLogger(__name__)
PROBLEM_TYPE = "https://secrets-ledger.dev/problems/"
STATUS_OF = {
    "invalid_request": 400,
    "value_too_large": 413,
    "unauthorized": 401,
    "forbidden": 403,
    "tenant_not_found": 404,
    "tenant_exists": 409,
    "tenant_shredded": 410,
    "secret_not_found": 404,
    "secret_deleted": 410,
    "secret_exists": 409,
    "version_id_in_use": 409,
    "version_not_found": 404,
    "version_destroyed": 410,
    "version_conflict": 412,
    "idempotency_key_reused": 409,
    "token_not_found": 404,
    "unavailable": 503,
    "overloaded": 503,
}
"""The status of each code of the core's ``LedgerError`` family (a test checks that every
code has one)."""
_TITLES = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 409: "Conflict", 410: "Gone", 412: "Precondition Failed",
    413: "Content Too Large", 415: "Unsupported Media Type", 500: "Internal Server Error",
    503: "Service Unavailable",
}
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "value_too_large",
               415: "invalid_request"}


RETRY_AFTER_SECONDS = "1"


def problem(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": PROBLEM_TYPE + code, "title": _TITLES.get(status, "Error"),
            "status": status, "detail": detail, "code": code, **extra}
    headers = ({"WWW-Authenticate": "Bearer"} if status == 401 else
               {"Retry-After": RETRY_AFTER_SECONDS} if status == 503 else None)
    return JSONResponse(body, status_code=status, media_type="application/problem+json",
                        headers=headers)


def problem_of(error: LedgerError) -> JSONResponse:
    return problem(STATUS_OF.get(error.code, 500), error.code, error.detail, **error.extra)


def describe(errors: Sequence[Any]) -> str:
    """A validation failure, naming the fields and never their input (which may be a
    secret value)."""
    if any(e.get("type") == "json_invalid" for e in errors):
        return "the body is not valid JSON"
    places = sorted({".".join(str(p) for p in e.get("loc", ()) if p != "body")
                     for e in errors})
    return "invalid request: check " + (", ".join(p for p in places if p) or "the body")


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(LedgerError)
    async def ledger_error(request: Request, error: LedgerError) -> JSONResponse:
        return problem_of(error)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        # Found before the core saw the request: a caller whose token is not valid is
        # told that first (the contract's order), whatever else is wrong.
        credential = getattr(request.state, "credential", None)
        if credential is not None:
            try:
                await request.app.state.ledger.authenticate(credential)
            except Unauthorized as refused:
                return problem_of(refused)
        return problem(400, "invalid_request", describe(error.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(error.status_code, "invalid_request")
        detail = error.detail if isinstance(error.detail, str) else code
        return problem(error.status_code, code, detail)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        log.error("unexpected %s on %s %s", type(error).__name__, request.method,
                  request.url.path)
        return problem(500, "internal_error", "an unexpected error; it was logged")
