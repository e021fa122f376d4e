"""The ledger of a deployment with several tenant groups: the same use cases as
``core.ledger.Ledger``, each call on a tenant sent to the tenant's group
(``core.groups``), and the calls that span tenants answered by every group, merged.

Front ends take it for a ``Ledger``: nothing in them knows that there are groups.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from secrets_ledger.core.admission import QueueLoad
from secrets_ledger.core.changes import ChangeFeed
from secrets_ledger.core.checkpoints import Checkpointer
from secrets_ledger.core.directory_ports import TenantDirectory
from secrets_ledger.core.grouped_feed import GroupedChanges
from secrets_ledger.core.groups import ByTenant, TenantGroups
from secrets_ledger.core.history import History
from secrets_ledger.core.imports import Imports, Version
from secrets_ledger.core.keys import Keys
from secrets_ledger.core.kv import KvCommands
from secrets_ledger.core.kv_reads import KvReads
from secrets_ledger.core.ledger import Ledger
from secrets_ledger.core.managed import ManagedCommands
from secrets_ledger.core.managed_purges import ManagedPurges
from secrets_ledger.core.managed_reads import ManagedReads
from secrets_ledger.core.move_ports import TenantCopy
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.ports import MasterKeySwitch
from secrets_ledger.core.principals import Credential, Principal, TokenRecord
from secrets_ledger.core.reads import Reads
from secrets_ledger.core.requests import RequestInfo
from secrets_ledger.core.secrets import Secrets, WriteResult
from secrets_ledger.core.signing_keys import SigningKey, SigningKeys
from secrets_ledger.core.tenant_move import MoveReport, TenantMove
from secrets_ledger.core.tenants import TenantInfo, Tenants
from secrets_ledger.core.tokens import Tokens
from secrets_ledger.core.transparency import TransparencyLog
from secrets_ledger.domain.errors import LedgerError, TokenNotFound, Unauthorized


class GroupedTenants(ByTenant):
    def __init__(self, groups: TenantGroups, copies: Mapping[str, TenantCopy]) -> None:
        super().__init__(groups, "tenants")
        self.mover = TenantMove(groups, copies)

    async def open(self, caller: Credential, tenant: str, request: RequestInfo) -> str:
        """Places a new tenant (``directory.placement``) once the caller may open it."""
        principal, group = await self.groups.placed(caller, tenant, UseCase.OPEN_TENANT)
        opened: str = await self.groups.ledgers[group].tenants.open(principal, tenant, request)
        return opened

    async def list_all(self, caller: Credential) -> list[TenantInfo]:
        """Each tenant as the group the directory names lists it (a moved tenant is
        still in the views of the group it left)."""
        principal = await self.groups.principal(caller)
        listed = await self.groups.home.door.in_thread(self.groups.directory.entries)
        home = self.groups.home_name
        found = [info for name, ledger in self.groups.ledgers.items()
                 for info in await ledger.tenants.list_all(principal)
                 if listed.get(info.tenant, home) == name]
        return sorted(found, key=lambda info: info.tenant)

    async def move(self, caller: Credential, tenant: str, target: str,
                   request: RequestInfo) -> MoveReport:
        return await self.mover.move(caller, tenant, target, request)


class GroupedImports(ByTenant):
    """An import that may open its tenant places it first, as ``tenants.open`` does."""

    async def json_object(self, caller: Credential, tenant: str, values: Mapping[str, Any],
                          request: RequestInfo, *, create_tenant: bool = False,
                          progress: Callable[[int], None] | None = None
                          ) -> list[WriteResult]:
        caller = await self._placing(caller, tenant, create_tenant)
        written: list[WriteResult] = await self.groups.on_tenant(
            "imports", "json_object", caller, tenant, values, request,
            create_tenant=create_tenant, progress=progress)
        return written

    async def histories(self, caller: Credential, tenant: str,
                        histories: Mapping[str, Sequence[Version]], request: RequestInfo, *,
                        create_tenant: bool = False,
                        progress: Callable[[int], None] | None = None) -> list[WriteResult]:
        caller = await self._placing(caller, tenant, create_tenant)
        written: list[WriteResult] = await self.groups.on_tenant(
            "imports", "histories", caller, tenant, histories, request,
            create_tenant=create_tenant, progress=progress)
        return written

    async def _placing(self, caller: Credential, tenant: str, create_tenant: bool
                       ) -> Credential:
        if not create_tenant:
            return caller
        principal, _ = await self.groups.placed(caller, tenant, UseCase.IMPORT_SECRETS)
        return principal


class GroupedTokens(ByTenant):
    async def list_all(self, caller: Credential, tenant: str | None = None
                       ) -> list[TokenRecord]:
        if tenant is not None:
            listed: list[TokenRecord] = await self.groups.on_tenant(
                "tokens", "list_all", caller, tenant)
            return listed
        principal = await self.groups.principal(caller)
        found = [record for ledger in self.groups.ledgers.values()
                 for record in await ledger.tokens.list_all(principal)]
        return sorted(found, key=lambda record: (record.created_at, record.token_id))

    async def revoke_any(self, caller: Credential, token: str, request: RequestInfo) -> str:
        """Revokes the token in every group that holds it (two, while its tenant moves)."""
        principal = await self.groups.principal(caller)
        revoked: list[str] = []
        for ledger in self.groups.ledgers.values():
            with contextlib.suppress(TokenNotFound):
                revoked.append(await ledger.tokens.revoke_any(principal, token, request))
        if not revoked:
            raise TokenNotFound("no such live token")
        return revoked[0]

    async def bootstrap(self, configured: str | None) -> str | None:
        return await self.groups.home.tokens.bootstrap(configured)


class GroupedKeys(ByTenant):
    async def rotate_master(self, caller: Credential, *, finish: bool = True
                            ) -> MasterKeySwitch:
        """Every group switches to the same next key; the old one is retired last."""
        principal = await self.groups.principal(caller)
        ledgers = list(self.groups.ledgers.values())
        switches = [await ledger.keys.rotate_master(principal, finish=False)
                    for ledger in ledgers[:-1]]
        switches.append(await ledgers[-1].keys.rotate_master(principal, finish=finish))
        for ledger in ledgers:
            ledger.door.ports.master_keys.refresh()
        retired = [switch.retired for switch in switches if switch.retired is not None]
        return MasterKeySwitch(sum(switch.rewrapped for switch in switches),
                               switches[-1].in_force, retired[0] if retired else None)


class GroupedTransparency(ByTenant):
    def log_keys(self) -> list[str]:
        return self.groups.home.transparency.log_keys()

    async def rotate_log_key(self, caller: Credential) -> str:
        """One log key signs for every group (the same key file or variable)."""
        principal = await self.groups.principal(caller)
        rotated = await self.groups.home.transparency.rotate_log_key(principal)
        for ledger in self.groups.ledgers.values():
            ledger.door.ports.log_key.refresh()
        return rotated


class GroupedSigningKeys(ByTenant):
    async def of(self, access_key_id: str) -> SigningKey:
        for ledger in self.groups.ledgers.values():
            try:
                return await ledger.signing_keys.of(access_key_id)
            except Unauthorized:
                continue
        raise Unauthorized("unknown access key id")


class GroupedPurges(ByTenant):
    async def sweep(self) -> int:
        return sum([await ledger.purges.sweep() for ledger in self.groups.ledgers.values()])


class GroupedCheckpoints(ByTenant):
    def origin(self, tenant: str) -> str:
        return self.groups.home.checkpointer.origin(tenant)

    def sign_round(self, *, sweep: bool = False) -> int:
        return sum(ledger.checkpointer.sign_round(sweep=sweep)
                   for ledger in self.groups.ledgers.values())


class GroupedLedger(Ledger):
    def __init__(self, ledgers: Mapping[str, Ledger], home: str, directory: TenantDirectory,
                 copies: Mapping[str, TenantCopy]) -> None:  # no super(): it holds no door
        self.groups = groups = TenantGroups(ledgers, home, directory)
        self.door = groups.home.door  # for what needs one process-wide (e.g. in_thread)
        self.grouped_tenants = GroupedTenants(groups, copies)
        self.tenants = cast(Tenants, self.grouped_tenants)
        self.tokens = cast(Tokens, GroupedTokens(groups, "tokens"))
        self.secrets = cast(Secrets, ByTenant(groups, "secrets"))
        self.imports = cast(Imports, GroupedImports(groups, "imports"))
        self.reads = cast(Reads, ByTenant(groups, "reads"))
        self.history = cast(History, ByTenant(groups, "history"))
        self.keys = cast(Keys, GroupedKeys(groups, "keys"))
        self.managed = cast(ManagedCommands, ByTenant(groups, "managed"))
        self.managed_reads = cast(ManagedReads, ByTenant(groups, "managed_reads"))
        self.signing_keys = cast(SigningKeys, GroupedSigningKeys(groups, "signing_keys"))
        self.purges = cast(ManagedPurges, GroupedPurges(groups, "purges"))
        self.kv = cast(KvCommands, ByTenant(groups, "kv"))
        self.kv_reads = cast(KvReads, ByTenant(groups, "kv_reads"))
        self.checkpointer = cast(Checkpointer, GroupedCheckpoints(groups, "checkpointer"))
        self.transparency = cast(TransparencyLog, GroupedTransparency(groups, "transparency"))
        self.changes = cast(ChangeFeed, GroupedChanges(groups, "changes"))

    async def authenticate(self, credential: Credential) -> Principal:
        return await self.groups.principal(credential)

    async def tenant_of(self, credential: Credential) -> str | None:
        if isinstance(credential, Principal):
            return credential.tenant
        holder = await self.groups.holder(credential)
        ledger = self.groups.ledgers[holder] if holder is not None else self.groups.home
        return await ledger.tenant_of(credential)

    async def refuse(self, credential: Credential, tenant: str | None, use_case: UseCase,
                     error: LedgerError) -> Any:
        group = self.groups.home_name if tenant is None else await self.groups.group_of(tenant)
        await self.groups.ledgers[group].refuse(
            await self.groups.credential_for(credential, group), tenant, use_case, error)

    def on_saved(self, hook: Callable[[], None]) -> None:
        for ledger in self.groups.ledgers.values():
            ledger.on_saved(hook)

    @property
    def load(self) -> QueueLoad:
        """Every group's writer's, summed."""
        loads = [ledger.load for ledger in self.groups.ledgers.values()]
        return QueueLoad(*map(sum, zip(*loads, strict=True)))

    def close(self) -> None:
        for ledger in self.groups.ledgers.values():
            ledger.close()
