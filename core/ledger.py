"""The ledger's use cases, grouped by what they act on; every front end calls these and
nothing below them.

    ledger.tenants   open, list_all, rotate_key, shred
    ledger.tokens    issue, revoke, revoke_any, list_tenant, list_all, bootstrap
    ledger.secrets   write, put, delete, undelete, roll_back, destroy
    ledger.imports   json_object
    ledger.reads     value, keys, versions
    ledger.history   audit, verify, verify_all
    ledger.keys      rotate_master
    ledger.managed         create, put, update, tag, move_label, delete, restore
    ledger.managed_reads   describe, listing, value, values
    ledger.purges          sweep (the server's: recovery windows that ran out)
    ledger.kv              enable/configure/disable_mount, write, delete/undelete/destroy_
                           versions, set_metadata, delete_metadata (Vault KV v2)
    ledger.kv_reads        mounts, mount, metadata, keys, read
    ledger.signing_keys    of (an AWS access key id's principal and secret)
    ledger.transparency    log_keys, checkpoint, inclusion, consistency, leaves,
                           value_proof (the tenants' transparency logs)
    ledger.checkpointer    sign_round (the server's: checkpoints, and their witnessing)
    ledger.changes         page, follow (the change feed: metadata only)

Each takes the caller's credential first and admits it for its ``policy.UseCase``; all
are coroutines (the CLI runs each with ``asyncio.run``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

from secrets_ledger.core.admission import QueueLoad
from secrets_ledger.core.changes import ChangeFeed
from secrets_ledger.core.checkpoints import Checkpointer, Witness
from secrets_ledger.core.door import UNKNOWN, Door
from secrets_ledger.core.history import History
from secrets_ledger.core.imports import Imports
from secrets_ledger.core.keys import Keys
from secrets_ledger.core.kv import KvCommands
from secrets_ledger.core.kv_reads import KvReads
from secrets_ledger.core.log_ports import WitnessPost
from secrets_ledger.core.managed import ManagedCommands
from secrets_ledger.core.managed_purges import ManagedPurges
from secrets_ledger.core.managed_reads import ManagedReads
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.ports import Ports, ViewsFollower
from secrets_ledger.core.principals import Credential, Principal
from secrets_ledger.core.reads import Reads
from secrets_ledger.core.secrets import Secrets
from secrets_ledger.core.settings import Settings
from secrets_ledger.core.signing_keys import SigningKeys
from secrets_ledger.core.tenants import Tenants
from secrets_ledger.core.tokens import Tokens
from secrets_ledger.core.transparency import TransparencyLog
from secrets_ledger.domain.errors import LedgerError


class Ledger:
    def __init__(self, ports: Ports, follower: ViewsFollower, settings: Settings,
                 witness_post: WitnessPost | None = None) -> None:
        self.door = Door(ports, follower, settings)
        self.tenants = Tenants(self.door)
        self.tokens = Tokens(self.door)
        self.secrets = Secrets(self.door)
        self.imports = Imports(self.door, self.tenants, self.secrets)
        self.reads = Reads(self.door)
        self.history = History(self.door)
        self.keys = Keys(self.door)
        self.managed = ManagedCommands(self.door)
        self.managed_reads = ManagedReads(self.door, self.reads)
        self.signing_keys = SigningKeys(self.door)
        self.purges = ManagedPurges(self.door)
        self.kv = KvCommands(self.door)
        self.kv_reads = KvReads(self.door, self.reads)
        self.checkpointer = Checkpointer(
            ports.log_rows, ports.log_key, ports.views,
            [Witness.parse(witness) for witness in settings.witnesses], witness_post)
        self.transparency = TransparencyLog(self.door, ports.log_rows, ports.log_key,
                                            self.checkpointer)
        self.changes = ChangeFeed(self.door, ports.change_rows, follower)

    async def authenticate(self, credential: Credential) -> Principal:
        """The principal a credential proves (Unauthorized if none)."""
        if isinstance(credential, Principal):
            return credential
        return await self.door.in_thread(self.door.authenticate, credential)

    async def tenant_of(self, credential: Credential) -> str | None:
        """The tenant of a credential's token (None: an admin's); Unauthorized if unknown.
        Not an admission: each use case still checks the token and its right."""
        known = self.door.remembered_tenant(credential)
        if known is not UNKNOWN:  # no thread, no statement: most requests
            return known  # type: ignore[return-value]
        return await self.door.in_thread(self.door.tenant_of, credential)

    async def refuse(self, credential: Credential, tenant: str | None, use_case: UseCase,
                     error: LedgerError) -> NoReturn:
        """For a front end that found the request malformed before it could call the use
        case: raises ``error`` once the caller is admitted for ``use_case``, so that a
        caller without the right is told that first, as the use case itself would."""
        await self.door.refuse(credential, tenant, use_case, error)

    def on_saved(self, hook: Callable[[], None]) -> None:
        """Calls ``hook`` after every batch stored (a front end's metrics)."""
        self.door.on_saved = hook

    @property
    def load(self) -> QueueLoad:
        """The writer's queue: depth, bytes, requests shed and abandoned."""
        queued = self.door.writer.load
        return QueueLoad(queued.jobs, queued.bytes, queued.shed, queued.abandoned)

    def close(self) -> None:
        self.changes.close()
        self.door.close()
