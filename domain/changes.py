"""What a command on a tenant is given: the request's context, the changes to make and
their preconditions, and how values are sealed (the aggregate never sees a plaintext)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class RequestContext:
    """Who asked, under which request id, and the idempotency key if one was given."""

    actor: str
    request_id: str
    idempotency_key: str | None = None
    request_hash: str | None = None


@dataclass(frozen=True)
class Precondition:
    """What a conditional write expects of a key (If-Match / If-None-Match / if_version)."""

    kind: Literal["version", "live", "absent"]
    version: int | None = None

    @classmethod
    def at_version(cls, version: int) -> Precondition:
        return cls("absent") if version == 0 else cls("version", version)


@dataclass(frozen=True)
class SealedValue:
    ciphertext: str  # base64 of nonce || ciphertext || tag
    dek_id: str  # the data key in the key store that opens it
    # SHA-256 of an opening and the value (``verifier.value_commitment``), in hex: what
    # binds the value a reader is given to the event in the transparency log.
    commitment: str | None = None

    def fields(self) -> dict[str, str]:
        """What a write stores of its sealed value."""
        stored = {"ciphertext": self.ciphertext, "dek_id": self.dek_id}
        if self.commitment is not None:
            stored["commitment"] = self.commitment
        return stored


Sealer = Callable[[str, int, int], SealedValue]
"""Seals the value of (key, version) with a data key wrapped by the given tenant key."""


@dataclass(frozen=True)
class SetValue:
    key: str
    metadata: dict[str, str] | None = None
    precondition: Precondition | None = None
    rollback_of: int | None = None


@dataclass(frozen=True)
class DeleteKey:
    key: str
    precondition: Precondition | None = None


Change = SetValue | DeleteKey
