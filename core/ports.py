"""What the core needs from storage: small interfaces that the adapters implement, once per
backend (``adapters/sqlite``, ``adapters/postgres``), and that tests can implement too.

Rows cross these interfaces as plain tuples and named tuples: the core decides what they
mean (a token's row proves a principal, a key row opens a value), the adapters only how
they are stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol
from uuid import UUID

from secrets_ledger.core.feed_ports import Advances, ChangeRows
from secrets_ledger.core.key_ports import KeyRows as KeyRows
from secrets_ledger.core.key_ports import LiveProcesses as LiveProcesses
from secrets_ledger.core.key_ports import MasterKeys as MasterKeys
from secrets_ledger.core.key_ports import MasterKeySwitch as MasterKeySwitch
from secrets_ledger.core.key_ports import TenantKeyRow as TenantKeyRow
from secrets_ledger.core.key_ports import WrappedDataKey as WrappedDataKey
from secrets_ledger.core.log_ports import LogRows, LogSigner
from secrets_ledger.core.managed_ports import ManagedRow as ManagedRow
from secrets_ledger.core.managed_ports import ManagedVersion as ManagedVersion
from secrets_ledger.core.managed_ports import MountRow as MountRow
from secrets_ledger.core.principals import TokenRecord
from secrets_ledger.domain.errors import Unavailable
from secrets_ledger.domain.reads import ValueReads
from secrets_ledger.domain.tenant import Tenant


class ConcurrentAppend(Exception):
    """Another process appended to one of the streams being saved; nothing was stored."""


class StoreUnreachable(Unavailable):
    """The store did not answer (a failover under way); nothing was stored by the call."""


class StoredEvent(NamedTuple):
    """One stored event as verification reads it: where it is, and how to decode it."""

    position: int
    stream_id: UUID
    version: int
    topic: str
    decode: Callable[[], Any]


class TenantStreams(Protocol):
    """The event store of the tenant aggregates (and of the read records)."""

    def load(self, tenant_id: UUID) -> Tenant | None:
        """The tenant's aggregate as stored, or None when it has no stream."""

    def newer_events(self, tenant: Tenant) -> list[Tenant.Event]:
        """Events other processes appended after ``tenant.version``."""

    def save(self, tenants: Sequence[Tenant], reads: Sequence[ValueReads],
             data_keys: Sequence[WrappedDataKey]) -> None:
        """Stores the tenants' pending events and the read records atomically, and the
        data keys so that no stored event lacks its key; ConcurrentAppend if another
        process appended to one of the streams first (then nothing is stored). A save
        whose connection is lost is asked after: it returns if it committed, raises
        StoreUnreachable if not, Unavailable if the store stayed away too long to tell."""

    def head(self, tenant_id: UUID) -> int | None:
        """The version of the stream's latest event, or None when there is no stream."""

    def max_position(self) -> int:
        """The position of the latest stored event (0 when there is none)."""

    def stream(self, tenant_id: UUID) -> Iterable[StoredEvent]:
        """Every stored event of one stream, in order."""

    def stored_after(self, position: int, limit: int) -> Sequence[StoredEvent]:
        """The next stored events of every stream after ``position``, in order."""

    def decoded_after(self, position: int, limit: int) -> Sequence[tuple[int, Any]]:
        """(position, event) of the next stored events, the fast way (a damaged one raises)."""

    def stored_event(self, stream_id: UUID, version: int) -> Any | None:
        """One stored event of a stream (a tenant's, or a read record's), decoded."""

    def event_at(self, position: int) -> Any | None:
        """The tenant event at a store position, decoded (None if none is there)."""


TokenRow = tuple[str, str, str, str | None, str | None, str | None]
"""``principals.TOKEN_COLUMNS``: token id, hash, role, tenant, expires at, revoked at."""


class TokenRows(Protocol):
    """API tokens, stored only as hashes; each change names its actor."""

    def insert(self, row: TokenRow, description: str, created_at: str, created_by: str
               ) -> bool:
        """False (and nothing stored) when a token with this hash exists already."""

    def by_hashes(self, digests: Sequence[str]) -> dict[str, TokenRow]:
        """The rows of the tokens with these hashes, by hash, in one statement."""

    def by_id(self, token_id: str) -> TokenRow | None: ...

    def revoke(self, token_ids: Sequence[str], at: str, by: str) -> list[str]:
        """Revokes those of these tokens that are live; returns their ids."""

    def live_bootstrap_ids(self) -> list[str]:
        """The live tokens whose id starts ``principals.BOOTSTRAP_ID_PREFIX``, oldest first."""

    def listing(self, tenant: str | None) -> list[TokenRecord]:
        """Every token (or those of one tenant) by creation, never a hash."""

    def has_live_admin(self) -> bool: ...

    def signing_row(self, token_id: str) -> tuple[TokenRow, str, str] | None:
        """(the token's row, its wrapped signing key, the master key id) if it has one."""


class AuditRow(NamedTuple):
    position: int
    at: str
    action: str
    key: str | None
    version: int | None
    actor: str
    request_id: str


@dataclass(frozen=True)
class AuditFilter:
    key: str | None = None
    actor: str | None = None
    action: str | None = None
    since: str | None = None  # stored time text, inclusive
    until: str | None = None  # stored time text, exclusive


class ViewQueries(Protocol):
    """The projected views (current view, audit trail), as the core's queries read them."""

    def tenant_state(self, tenant_id: str) -> tuple[str | None, int, str | None] | None:
        """(shredded_at, the stream version the views hold, the group it moved to)."""

    def tenants(self) -> list[tuple[str, str, str | None]]:
        """(name, created_at, shredded_at) of every tenant, by name."""

    def idempotency_record(self, tenant_id: str, key: str) -> tuple[str | None, str] | None:
        """(request hash, JSON outcome) of an idempotency key of the tenant."""

    def key_state(self, tenant_id: str, key: str) -> tuple[int, bool] | None:
        """(latest version, deleted) of a key."""

    def version_row(self, tenant_id: str, key: str, version: int
                    ) -> tuple[str | None, str | None, str | None] | None:
        """(ciphertext, dek_id, metadata JSON) of one version of a key."""

    def data_key_ids(self, tenant_id: str, key: str) -> dict[int, str | None]:
        """Every version of the key with its data key id (None once destroyed)."""

    def current_versions(self, tenant_id: str) -> dict[str, int]:
        """The current version of every live key of the tenant."""

    def versions(self, tenant_id: str, key: str) -> list[tuple[int, str, str, str]]:
        """(version, created_at, created_by, state) of every version of a key."""

    def keys_page(self, tenant_id: str, prefix: str, after: str, limit: int,
                  at: str | None) -> list[tuple[str, int, str]]:
        """(key, version, updated_at) of live keys after ``after`` in byte order, now or as
        they were ``at``; at most ``limit`` rows."""

    def audit_page(self, tenant_id: str, where: AuditFilter, after: int,
                   limit: int) -> list[AuditRow]: ...

    def managed_secrets(self, tenant_id: str, space: str, names: Sequence[str] | None = None
                        ) -> list[ManagedRow]:
        """The managed secrets of a space (those named, or all) by name, with each one's
        versions of its incarnation."""

    def expired_managed(self, now: str) -> list[tuple[str, str]]:
        """(tenant, key) of every managed secret whose recovery window ended by ``now``."""

    def mounts(self, tenant_id: str) -> list[MountRow]:
        """The tenant's mounts, by path."""

    def version_position(self, tenant_id: str, key: str, version: int) -> int | None:
        """The store position of the event that wrote a version of a key."""


class ValueLookup(NamedTuple):
    """One value read of a batch: which tenant, key and version, and whose token."""

    tenant_id: UUID
    token_digest: str | None  # None when the caller is an established principal
    key: str
    version: int | None  # None: the version current now (or ``at``)
    at: str | None  # stored time text: the version current then


class ValueRow(NamedTuple):
    """Everything one value read needs, read in the same statement as the batch's others:
    the token's row, the stream's head against the views (read-your-writes), the key and
    version rows, and the rows of the keys that open the value."""

    token_id: str | None
    token_hash: str | None
    role: str | None
    token_tenant: str | None
    expires_at: str | None
    revoked_at: str | None
    head: int | None  # the stream's latest version, None when there is no stream
    views_version: int | None  # the stream version the views hold
    shredded_at: str | None
    current_version: int | None  # None when the key never existed
    deleted: bool | None
    at_version: int | None  # the version current ``at`` (when asked)
    at_live: bool | None
    version: int | None  # the version found (None: no such version)
    state: str | None
    metadata: str | None
    created_at: str | None
    created_by: str | None
    ciphertext: str | None
    dek_id: str | None
    data_key_wrapped: str | None
    tenant_key_version: int | None
    tenant_key_wrapped: str | None
    master_key_id: str | None
    # A managed secret's (domain.managed; None for native keys): its incarnation's
    # suffix, labels (JSON), end of its recovery window, and the client id of the version.
    managed_suffix: str | None = None
    managed_labels: str | None = None
    managed_purge_after: str | None = None
    managed_client_id: str | None = None
    managed_base: int | None = None
    managed_settings: str | None = None  # JSON
    managed_deleted_at: str | None = None  # the version's soft delete
    mount_config: str | None = None  # JSON, of a Vault key's mount
    moved_to: str | None = None  # the tenant group the tenant moved to

    @property
    def token(self) -> tuple[Any, ...]:
        return tuple(self[:6])


class ValueLookups(Protocol):
    def value_rows(self, lookups: Sequence[ValueLookup]) -> list[ValueRow]:
        """One row per lookup, in order, in one statement."""


class ViewsFollower(Advances, Protocol):
    """The projector, as the core waits for it (read-your-writes)."""

    def wait_until(self, caught_up: Callable[[], bool], timeout: float) -> bool:
        """Blocks until ``caught_up()`` holds; False on timeout."""

    def wait_for(self, position: int, timeout: float) -> bool:
        """Blocks until every view has applied ``position``; False on timeout."""

    def wake(self) -> None:
        """New events were stored: follow them now rather than at the next poll."""


class Ports(Protocol):
    """Everything the core reads and writes in one tenant group's storage."""

    @property
    def streams(self) -> TenantStreams: ...

    @property
    def key_rows(self) -> KeyRows: ...

    @property
    def master_keys(self) -> MasterKeys: ...

    @property
    def processes(self) -> LiveProcesses: ...

    @property
    def token_rows(self) -> TokenRows: ...

    @property
    def views(self) -> ViewQueries: ...

    @property
    def value_lookups(self) -> ValueLookups: ...

    @property
    def log_rows(self) -> LogRows: ...  # the tenants' transparency logs

    @property
    def log_key(self) -> LogSigner: ...

    @property
    def change_rows(self) -> ChangeRows: ...

    @property
    def unreachable(self) -> tuple[type[BaseException], ...]:
        """What the drivers raise when the store cannot be reached now."""
