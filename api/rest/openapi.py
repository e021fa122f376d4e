"""``/openapi.json`` as the server answers: every error an operation can answer is an RFC
9457 problem (``application/problem+json``) with the contract's status, and there is no
FastAPI ``422`` (the server answers validation errors with ``400 invalid_request``)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from secrets_ledger.api.rest.problems import STATUS_OF

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"}, "title": {"type": "string"},
        "status": {"type": "integer"}, "detail": {"type": "string"},
        "code": {"type": "string", "enum": sorted({*STATUS_OF, "not_found",
                                                    "method_not_allowed", "internal_error"})},
        "instance": {"type": "string"}, "request_id": {"type": "string"},
    },
}
EVERY_API_CALL = {400: "invalid request", 401: "missing, bad, expired or revoked token",
                  403: "the token may not do this", 404: "no such tenant, key or token",
                  503: "storage unavailable or the views too far behind"}
WITH_A_BODY = {413: "the body is over 1 MiB or a value over 64 KiB"}
CHANGES = {409: "the tenant exists, or the idempotency key was used for another request",
           410: "the tenant was shredded, or the version destroyed",
           412: "If-Match or if_version names another version"}
READS = {410: "deleted secret, destroyed version or shredded tenant"}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {
        "schema": {"$ref": "#/components/schemas/Problem"}}}}


def _errors_of(method: str, operation: dict[str, Any]) -> dict[int, str]:
    errors = dict(EVERY_API_CALL)
    if method in ("put", "post", "delete"):
        errors |= CHANGES
    else:
        errors |= READS
    if "requestBody" in operation or method == "put":
        errors |= WITH_A_BODY
    return errors


def describe_problems(app: FastAPI) -> None:
    """Replaces ``app.openapi`` with the document described above (built once)."""
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(title=app.title, version=app.version,
                               description=app.description, routes=app.routes)
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        schemas["Problem"] = PROBLEM_SCHEMA
        for path, operations in document["paths"].items():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)
                if path.startswith("/v1/"):
                    for status, text in _errors_of(method, operation).items():
                        responses.setdefault(str(status), _problem(text))
                for status, response in responses.items():
                    if int(status) >= 400 and "content" not in response:  # e.g. /readyz
                        responses[status] = _problem(response.get("description", ""))
        app.openapi_schema = document
        return document

    app.openapi = openapi  # type: ignore[method-assign]
