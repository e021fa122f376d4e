"""One exception family for every refusal; each member carries a stable code.

Codes, not wire statuses: each front end has its own table from code to its wire format
(the REST API's problem+json statuses in ``api/rest/problems.py``; a Vault or AWS façade
answers the same refusal its own way).
"""

from __future__ import annotations

from typing import Any


class LedgerError(Exception):
    """Base of every refusal the ledger reports to a caller."""

    code = "invalid_request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidRequest(LedgerError):
    code = "invalid_request"


class ValueTooLarge(LedgerError):
    code = "value_too_large"


class Unauthorized(LedgerError):
    """No credential, or one that is unknown, expired or revoked."""

    code = "unauthorized"


class Forbidden(LedgerError):
    """A valid credential without the right for this use case."""

    code = "forbidden"


class TenantNotFound(LedgerError):
    code = "tenant_not_found"


class TenantExists(LedgerError):
    code = "tenant_exists"


class TenantShredded(LedgerError):
    code = "tenant_shredded"


class SecretNotFound(LedgerError):
    code = "secret_not_found"


class SecretExists(LedgerError):
    """A managed secret of that name exists (in that space)."""

    code = "secret_exists"


class VersionIdInUse(LedgerError):
    """A client's version id names a version already (``extra["version"]``)."""

    code = "version_id_in_use"


class SecretDeleted(LedgerError):
    code = "secret_deleted"


class VersionNotFound(LedgerError):
    code = "version_not_found"


class VersionDestroyed(LedgerError):
    code = "version_destroyed"


class VersionConflict(LedgerError):
    """A precondition on a key no longer holds; carries the key's current state."""

    code = "version_conflict"

    def __init__(self, key: str, current_version: int | None, deleted: bool) -> None:
        super().__init__(
            f"precondition failed for key {key!r}",
            key=key,
            current_version=current_version,
            deleted=deleted,
        )


class IdempotencyKeyReused(LedgerError):
    code = "idempotency_key_reused"


class TokenNotFound(LedgerError):
    code = "token_not_found"


class Unavailable(LedgerError):
    """Storage, the views or the writer cannot serve this now; retrying may succeed."""

    code = "unavailable"


class Contended(Unavailable):
    """Other processes kept appending to the tenant's stream while this command was
    retried: nothing was stored."""


class TenantMoved(Unavailable):
    """The tenant is being moved to another tenant group, or was: nothing was done here;
    the same request succeeds in the tenant's group (tenant groups find it by themselves)."""


class Overloaded(LedgerError):
    """The ledger has as much work queued as it may hold: retry after a moment."""

    code = "overloaded"


class CannotOpen(Exception):
    """The one opaque failure of every attempt to open sealed material.

    It never says why (wrong key, moved ciphertext, destroyed key, tampering): telling
    them apart would help an attacker and never helps a legitimate caller.
    """

    def __init__(self) -> None:
        super().__init__("sealed material cannot be opened")
