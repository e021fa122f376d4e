"""The AWS Secrets Manager façade's ASGI app: one ``POST /`` whose ``X-Amz-Target`` names
the operation, signed with SigV4 by a key pair derived from a ledger tenant token.

It authenticates (the signature, against the token's signing key, which the core hands
out for a live token only) and translates; the core authorizes and acts. Every failure
is AWS-shaped (``{"__type", "message"}``), never a stack trace, never a value.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram

from secrets_ledger.api.aws import sigv4
from secrets_ledger.api.aws.call import Call
from secrets_ledger.api.aws.errors import AwsError, from_ledger
from secrets_ledger.api.aws.operations import OPERATIONS
from secrets_ledger.core.ledger import Ledger
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.domain.errors import LedgerError
from secrets_ledger.domain.times import utc_now

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 1 << 20  # a 64 KiB value escaped as JSON, with room for the envelope
TARGET_PREFIX = "secretsmanager."
CONTENT_TYPE = b"application/x-amz-json-1.1"


class TooLarge(Exception):
    pass


class AwsFacade:
    def __init__(self, ledger: Ledger, account: str, registry: CollectorRegistry,
                 max_body: int = MAX_BODY_BYTES) -> None:
        self.ledger = ledger
        self.account = account
        self.max_body = max_body
        self.requests = Counter("ledger_aws_requests_total",
                                "AWS façade requests by operation and outcome",
                                ["operation", "outcome"], registry=registry)
        self.latency = Histogram("ledger_aws_request_duration_seconds",
                                 "AWS façade latency by operation", ["operation"],
                                 registry=registry)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        raw_headers = [(k.decode("latin-1"), v.decode("latin-1"))
                       for k, v in scope.get("headers", [])]
        headers = {k.lower(): v for k, v in raw_headers}
        target = headers.get("x-amz-target", "")
        operation = target[len(TARGET_PREFIX):] if target.startswith(TARGET_PREFIX) else ""
        label = operation if operation in OPERATIONS else "unknown"
        try:
            body = await self._body(scope, receive, headers)
            answer = await self._answer(scope, raw_headers, headers, operation, body,
                                        request_id)
            status, payload, error_type = 200, orjson.dumps(answer), None
        except AwsError as error:
            status, error_type = error.status, error.error_type
            payload = orjson.dumps({"__type": error.error_type, "message": error.message})
        except TooLarge:
            status, error_type = 413, "RequestEntityTooLargeException"
            payload = orjson.dumps({"__type": error_type,
                                    "message": "The request body is too large."})
        except Exception as error:  # never a trace or a value on the wire, or in the log
            log.error("unexpected %s in AWS façade request %s (%s)", type(error).__name__,
                      request_id, label)
            status, error_type = 500, "InternalServiceError"
            payload = orjson.dumps({"__type": error_type, "message": "Internal error."})
        response_headers = [(b"content-type", CONTENT_TYPE),
                            (b"content-length", str(len(payload)).encode()),
                            (b"x-amzn-requestid", request_id.encode())]
        if error_type is not None:
            response_headers.append((b"x-amzn-errortype", error_type.encode()))
        await send({"type": "http.response.start", "status": status,
                    "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})
        self.requests.labels(label, error_type or "ok").inc()
        self.latency.labels(label).observe(time.perf_counter() - started)

    async def _body(self, scope: dict[str, Any], receive: Any,
                    headers: dict[str, str]) -> bytes:
        declared = headers.get("content-length", "0")
        if declared.isdigit() and int(declared) > self.max_body:
            raise TooLarge
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise AwsError("RequestAborted", "The client went away.")
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _answer(self, scope: dict[str, Any], raw_headers: list[tuple[str, str]],
                      headers: dict[str, str], operation: str, body: bytes,
                      request_id: str) -> dict[str, Any]:
        if scope.get("method") != "POST":
            raise AwsError("UnknownOperationException", "Send a POST with X-Amz-Target.")
        try:
            claim = sigv4.parse(headers)
            sigv4.check_time(claim, utc_now())
            key = await self.ledger.signing_keys.of(claim.access_key_id)
            sigv4.verify(claim, key.secret, "POST", scope.get("raw_path", b"/").decode("latin-1"),
                         scope.get("query_string", b"").decode("latin-1"), raw_headers, body)
        except sigv4.SignatureRefused as refused:
            raise AwsError(refused.error_type, refused.message) from None
        except LedgerError as error:
            raise from_ledger(error, operation, "", self.account) from None
        run = OPERATIONS.get(operation)
        if run is None:
            raise AwsError("UnknownOperationException",
                           f"The operation {operation or '(none)'} is not supported.")
        try:
            fields = orjson.loads(body or b"{}")
        except orjson.JSONDecodeError:
            raise AwsError("SerializationException", "The request body is not JSON.") from None
        if not isinstance(fields, dict):
            raise AwsError("SerializationException", "The request body is not a JSON object.")
        call = Call(self.ledger, key.credential, key.tenant, claim.region, self.account,
                    fields, RequestInfo(request_id, size=len(body)))
        try:
            return await run(call)
        except LedgerError as error:
            raise from_ledger(error, operation, claim.region, self.account) from None
