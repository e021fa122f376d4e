"""AWS signing keys derived from ledger tokens (the AWS façade's SigV4 credentials).

The holder of a tenant token derives its key pair alone, so no second secret is ever
shown: the access key id is ``SLTK`` and the token's id part in capitals, the secret
access key ``b64url(HMAC-SHA256(token, "secrets-ledger/aws-sigv4/v1"))[:40]``. The
server derives the same secret once, while it holds the token at issue, and keeps it
only wrapped under the master key (never the token, never its hash: a database dump is
no credential). Revoking or expiring the token ends the pair: each request reads the
token's row. Admin tokens are global and get none: the façade acts in one tenant.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from secrets_ledger.core.door import Door
from secrets_ledger.core.principals import BearerToken, principal_of
from secrets_ledger.domain import crypto
from secrets_ledger.domain.errors import CannotOpen, Unauthorized

ACCESS_KEY_PREFIX = "SLTK"
DERIVATION_LABEL = b"secrets-ledger/aws-sigv4/v1"
SECRET_CHARS = 40
CACHE_SIZE = 10_000
_TOKEN = re.compile(r"slt_([0-9a-f]{16})_\S+")
_ACCESS_KEY = re.compile(ACCESS_KEY_PREFIX + r"([0-9A-F]{16})")


def aws_key_pair(token: str) -> tuple[str, str]:
    """(access key id, secret access key) of a ledger token."""
    match = _TOKEN.fullmatch(token.strip())
    if match is None:
        raise Unauthorized("only issued tokens (slt_<id>_...) have an AWS key pair")
    digest = hmac.new(token.strip().encode("utf-8"), DERIVATION_LABEL, hashlib.sha256).digest()
    secret = base64.urlsafe_b64encode(digest).decode("ascii")[:SECRET_CHARS]
    return ACCESS_KEY_PREFIX + match.group(1).upper(), secret


def token_id_of(access_key_id: str) -> str | None:
    match = _ACCESS_KEY.fullmatch(access_key_id)
    return None if match is None else f"tok_{match.group(1).lower()}"


def store_signing_key(door: Door, token_id: str, secret: str) -> None:
    """Stores the secret wrapped under the master key in force (wrapped under every key
    held, so that a master-key rotation running meanwhile can neither miss it nor find
    it under a retired key: ``KeyRows.store_signing_key`` keeps the right one)."""
    aad = crypto.signing_key_aad(token_id)
    wraps = {key_id: crypto.to_text(crypto.seal(master, secret.encode("ascii"), aad))
             for key_id, master in door.ports.master_keys.held().items()}
    door.ports.key_rows.store_signing_key(token_id, wraps)


@dataclass(frozen=True)
class SigningKey:
    """What an access key id stands for: its token (as a credential the core checks on
    every use, so that a revocation takes effect at once), its tenant, and its secret."""

    credential: BearerToken
    tenant: str
    secret: bytes = field(repr=False)


class SigningKeys:
    """Looks up access keys; the unwrapped secrets of recent ones are kept in memory
    (bounded): a token's secret, hash and tenant never change, and whether it is still
    live is checked by every use case that it is presented to."""

    def __init__(self, door: Door, cache_size: int = CACHE_SIZE) -> None:
        self.door = door
        self.cache_size = cache_size
        self._cache: OrderedDict[str, SigningKey] = OrderedDict()
        self._lock = threading.Lock()

    async def of(self, access_key_id: str) -> SigningKey:
        """The signing key of a live tenant token; Unauthorized for an unknown key id, or a
        token revoked, expired or issued without one."""
        with self._lock:
            found = self._cache.get(access_key_id)
            if found is not None:
                self._cache.move_to_end(access_key_id)
                return found
        found = await self.door.in_thread(self._of, access_key_id)
        with self._lock:
            self._cache[access_key_id] = found
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return found

    def _of(self, access_key_id: str) -> SigningKey:
        token_id = token_id_of(access_key_id)
        found = None if token_id is None else self.door.ports.token_rows.signing_row(token_id)
        if found is None:
            raise Unauthorized("no such access key")
        row, wrapped, master_key_id = found
        principal = principal_of(str(row[1]), row)
        if principal.tenant is None:
            raise Unauthorized("no such access key")
        try:
            master = self.door.ports.master_keys.by_fingerprint(master_key_id)
            secret = crypto.open_sealed(master, crypto.from_text(wrapped),
                                        crypto.signing_key_aad(principal.token_id))
        except CannotOpen:
            raise Unauthorized("no such access key") from None
        return SigningKey(BearerToken(str(row[1])), principal.tenant, secret)
