"""One exception family for the domain; each member carries the contract's stable code."""

from __future__ import annotations

from typing import Any


class LedgerError(Exception):
    """Base of every refusal the ledger reports to a caller."""

    code = "invalid_request"
    status = 400

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidRequest(LedgerError):
    code, status = "invalid_request", 400


class ValueTooLarge(LedgerError):
    code, status = "value_too_large", 413


class TenantNotFound(LedgerError):
    code, status = "tenant_not_found", 404


class TenantExists(LedgerError):
    code, status = "tenant_exists", 409


class TenantShredded(LedgerError):
    code, status = "tenant_shredded", 410


class SecretNotFound(LedgerError):
    code, status = "secret_not_found", 404


class SecretDeleted(LedgerError):
    code, status = "secret_deleted", 410


class VersionNotFound(LedgerError):
    code, status = "version_not_found", 404


class VersionDestroyed(LedgerError):
    code, status = "version_destroyed", 410


class VersionConflict(LedgerError):
    """A precondition on a key no longer holds; carries the key's current state."""

    code, status = "version_conflict", 412

    def __init__(self, key: str, current_version: int | None, deleted: bool) -> None:
        super().__init__(
            f"precondition failed for key {key!r}",
            key=key,
            current_version=current_version,
            deleted=deleted,
        )


class IdempotencyKeyReused(LedgerError):
    code, status = "idempotency_key_reused", 409


class Unavailable(LedgerError):
    code, status = "unavailable", 503


class Unauthorized(LedgerError):
    code, status = "unauthorized", 401


class Forbidden(LedgerError):
    code, status = "forbidden", 403


class CannotOpen(Exception):
    """The one opaque failure of every attempt to open sealed material.

    It never says why (wrong key, moved ciphertext, destroyed key, tampering): telling
    them apart would help an attacker and never helps a legitimate caller.
    """

    def __init__(self) -> None:
        super().__init__("sealed material cannot be opened")


class TokenNotFound(LedgerError):
    code, status = "token_not_found", 404
