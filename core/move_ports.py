"""What moving a tenant between groups needs from each group's storage (``tenant_move``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple, Protocol
from uuid import UUID

Row = tuple[Any, ...]


class TenantRows(NamedTuple):
    """A tenant's rows outside its records, as stored: all wrapped, none readable alone."""

    tenant_keys: list[Row]  # wrapped under the master key (the same in every group)
    data_keys: list[Row]  # wrapped under the tenant's keys
    tokens: list[Row]  # hashes only, with their AWS signing keys (wrapped)


class LogLeaf(NamedTuple):
    """One leaf of a tenant's log, and the record it covers."""

    record_id: str  # '' for the tenant's own event (then version is its stream version)
    version: int
    leaf: bytes


class TenantCopy(Protocol):
    def leaves(self, tenant_id: UUID) -> list[LogLeaf]:
        """Every leaf of the tenant's log, in order."""

    def records(self, tenant_id: UUID, leaves: Sequence[LogLeaf]) -> list[Any]:
        """The records those leaves cover, decoded, in the same order: the tenant's events,
        and its reads of each read record (``MovedReads``, one tenant's only)."""

    def rows(self, tenant: str, tenant_id: UUID) -> TenantRows: ...

    def store(self, records: Sequence[Any], rows: TenantRows) -> None:
        """Stores copied records as they were (same streams, versions, times) with their
        log leaves, the keys that open them, and the tenant's tokens, in one transaction
        (the records, leaves and data keys; the tenant keys and tokens just before)."""

    def revoke_as(self, tokens: Sequence[Row]) -> None:
        """Revokes the tokens of these rows (``TenantRows.tokens``) revoked in them."""

    def erase(self, tenant: str, tenant_id: UUID) -> None:
        """Deletes the tenant's keys and tokens, unreadable from the database's files
        afterwards: its records stay, sealed for good."""
