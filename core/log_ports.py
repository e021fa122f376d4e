"""What the transparency-log use cases need from storage and from the log key."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple, Protocol

from secrets_ledger.domain.log_fold import CHUNK, LogSnapshot


class StoredLeaf(NamedTuple):
    leaf_index: int
    record_id: str  # '' for the tenant's own event (then record_version is its version)
    record_version: int
    hashes: bytes  # the leaf's hash, then the subtrees it completes (``merkle_log``)


class StoredCheckpoint(NamedTuple):
    size: int
    root: bytes
    note: str  # the signed note, with any witness cosignatures


HeadRow = tuple[str, int, bytes]  # tenant id, size, root


class LogRows(Protocol):
    """The tenants' logs as stored beside the events."""

    def rows(self, tenant_id: str, indexes: Iterable[int]) -> dict[int, bytes]:
        """The stored hashes of these leaves' rows (those that exist)."""

    def size(self, tenant_id: str) -> tuple[int, bytes] | None:
        """(size, root) of the log's head, or None when it has no leaf; once its leaves
        are as safe as an acknowledged write (a checkpoint is never signed over leaves a
        failover could take back)."""

    def leaves(self, tenant_id: str, start: int, end: int) -> list[StoredLeaf]:
        """The stored leaves ``start`` to ``end - 1``, in order."""

    def leaf_of(self, tenant_id: str, record_id: str, record_version: int) -> int | None:
        """The index of a record's leaf in the tenant's log."""

    def leaf_rows(self, tenant_id: str, start: int, end: int
                  ) -> Sequence[tuple[int, str, int, bytes]]:
        """``leaves`` as plain tuples (verification reads them all)."""

    def log_size(self, tenant_id: str) -> int:
        """How many leaves the log holds (0: none, or no such tenant)."""

    def log_tenants(self) -> list[str]:
        """Every tenant with a stored log."""

    def checkpoint_roots(self, tenant_id: str | None) -> dict[str, tuple[int, bytes]]:
        """(size, root) of one log's latest checkpoint, or of every log's."""

    def snapshot(self) -> LogSnapshot:
        """The store's last position, and every log's size and checkpoint there."""

    def chunk_digests(self, sizes: dict[str, int], chunk: int = CHUNK
                      ) -> dict[str, list[bytes]]:
        """Each log's digests of its rows below its given size, per ``chunk`` leaves
        (``domain.log_fold``)."""

    def unsigned(self) -> list[HeadRow]:
        """The heads this process grew since the last call (taken): of acknowledged
        writes only."""

    def behind(self) -> list[HeadRow]:
        """The heads of every log whose latest checkpoint is older (a scan); as safe as
        an acknowledged write, as ``size``."""

    def checkpoint(self, tenant_id: str) -> StoredCheckpoint | None: ...

    def store_checkpoints(self, rows: Sequence[tuple[str, int, bytes, str, str]]) -> None:
        """(tenant, size, root, note, time): each stored if newer than the one stored,
        or the same checkpoint with more signatures."""


class LogSigner(Protocol):
    """The log key: signs checkpoints; its public half is published."""

    @property
    def name(self) -> str: ...

    def sign(self, text: str) -> str:
        """The checkpoint text as a signed note."""

    def published(self) -> list[str]:
        """The verifier keys of the key in use, then of retired ones."""

    def rotate(self) -> str:
        """A new key in use (the old one retired, still published); its verifier key."""

    def refresh(self) -> None:
        """Loads the key again if a rotation (by any process) changed it."""


WitnessPost = Callable[[str, bytes], tuple[int, str]]
"""POSTs a body to a URL: (HTTP status, response text)."""
