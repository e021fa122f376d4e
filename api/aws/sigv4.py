"""AWS Signature Version 4, as a server checks it (the signer is botocore's ``SigV4Auth``).

The client signs a canonical form of the request: method, path, query, the headers it
names in ``SignedHeaders`` (``host`` among them: a request replayed to another host
fails), and the SHA-256 of the body, under a key derived from its secret, the date, the
region and the service. The façade rebuilds that form from what arrived, derives the
same key from the secret the token holds, and compares in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from urllib.parse import parse_qsl, quote

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "secretsmanager"
MAX_SKEW = timedelta(minutes=5)
_AUTHORIZATION = re.compile(
    ALGORITHM + r" Credential=([^/\s,]+)/(\d{8})/([a-z0-9-]{1,32})/([a-z0-9-]{1,64})/aws4_request"
    r",\s*SignedHeaders=([a-z0-9;.-]+),\s*Signature=([0-9a-f]{64})")
_SPACES = re.compile(r"\s+")
_BASIC_FORMAT = re.compile(r"\d{8}T\d{6}Z")


class SignatureRefused(Exception):
    """Why a request's signature is not accepted: an AWS error type and its message."""

    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message


@dataclass(frozen=True)
class SignedRequest:
    """What the Authorization header claims: checked by ``verify`` once the key is known."""

    access_key_id: str
    date: str  # YYYYMMDD of the credential scope
    region: str
    service: str
    signed_headers: tuple[str, ...]
    signature: str
    amz_date: str


def parse(headers: dict[str, str]) -> SignedRequest:
    authorization = headers.get("authorization")
    if authorization is None:
        raise SignatureRefused("MissingAuthenticationTokenException",
                               "Missing Authentication Token")
    match = _AUTHORIZATION.fullmatch(authorization.strip())
    if match is None:
        raise SignatureRefused("IncompleteSignatureException",
                               "Authorization header requires a valid AWS4-HMAC-SHA256"
                               " Credential, SignedHeaders and Signature.")
    key_id, date, region, service, signed, signature = match.groups()
    amz_date = headers.get("x-amz-date", "")
    names = tuple(signed.split(";"))
    if "host" not in names:
        raise SignatureRefused("InvalidSignatureException",
                               "'Host' must be a 'SignedHeader' in the AWS Authorization.")
    if service != SERVICE:
        raise SignatureRefused("InvalidSignatureException",
                               f"Credential should be scoped to correct service: '{SERVICE}'.")
    if not amz_date.startswith(date) or "x-amz-date" not in names:
        raise SignatureRefused("IncompleteSignatureException",
                               "Date must be in ISO-8601 'basic format' and signed, and the"
                               " credential scope must name the same day.")
    return SignedRequest(key_id, date, region, service, names, signature, amz_date)


def check_time(claim: SignedRequest, now: datetime) -> None:
    """The signature's time within ``MAX_SKEW`` of ``now`` (as text: the fixed-width basic
    format orders as time does, and parsing a date per request costs more than this)."""
    amz_date = claim.amz_date
    if not _BASIC_FORMAT.fullmatch(amz_date):
        raise SignatureRefused("IncompleteSignatureException",
                               "Date must be in ISO-8601 'basic format'.")
    earliest, latest, current = _window(now.replace(microsecond=0))
    if amz_date < earliest:
        raise SignatureRefused("InvalidSignatureException",
                               f"Signature expired: {amz_date} is now earlier than {earliest}"
                               f" ({current} - 5 min.)")
    if amz_date > latest:
        raise SignatureRefused("InvalidSignatureException",
                               f"Signature not yet current: {amz_date} is still later than"
                               f" {latest} ({current} + 5 min.)")


@lru_cache(maxsize=4)
def _window(now: datetime) -> tuple[str, str, str]:
    """(earliest, latest, now) as signatures write times; one second's worth, cached."""
    return tuple(  # type: ignore[return-value]
        moment.strftime("%Y%m%dT%H%M%SZ") for moment in (now - MAX_SKEW, now + MAX_SKEW, now))


def verify(claim: SignedRequest, secret: bytes, method: str, raw_path: str, query: str,
           headers: Sequence[tuple[str, str]], body: bytes) -> None:
    """Raises unless the signature is the one ``secret`` makes of this request."""
    values: dict[str, list[str]] = {}
    for name, value in headers:
        values.setdefault(name.lower(), []).append(_SPACES.sub(" ", value.strip()))
    if any(name not in values for name in claim.signed_headers):
        raise _mismatch()
    canonical_headers = "".join(f"{name}:{','.join(values[name])}\n"
                                for name in claim.signed_headers)
    payload = hashlib.sha256(body).hexdigest()
    canonical = "\n".join((method, _canonical_path(raw_path), _canonical_query(query),
                           canonical_headers, ";".join(claim.signed_headers), payload))
    scope = f"{claim.date}/{claim.region}/{claim.service}/aws4_request"
    to_sign = "\n".join((ALGORITHM, claim.amz_date, scope,
                         hashlib.sha256(canonical.encode("utf-8")).hexdigest()))
    key = _signing_key(secret, claim.date, claim.region, claim.service)
    expected = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, claim.signature):
        raise _mismatch()


def _mismatch() -> SignatureRefused:
    return SignatureRefused(
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided."
        " Check your AWS Secret Access Key and signing method. Consult the service"
        " documentation for details.")


@lru_cache(maxsize=1024)
def _signing_key(secret: bytes, date: str, region: str, service: str) -> bytes:
    """The key of one day, region and service (four HMACs: kept for the day's requests)."""
    key = _hmac(b"AWS4" + secret, date)
    for part in (region, service, "aws4_request"):
        key = _hmac(key, part)
    return key


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


def _canonical_path(raw_path: str) -> str:
    # botocore signs the path as sent (already percent-encoded), never double-encoded for
    # this service; an empty path is "/".
    return raw_path or "/"


def _canonical_query(query: str) -> str:
    pairs = parse_qsl(query, keep_blank_values=True)
    return "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                    for k, v in sorted(pairs))
