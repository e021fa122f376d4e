"""A running ledger over several tenant groups: one ``LedgerRuntime`` per group (its own
storage, projector, writer, checkpoints), and one ``GroupedLedger`` over them, which the
front ends take for the ledger."""

from __future__ import annotations

import re
from types import TracebackType

from secrets_ledger.adapters.sql.directory import SqlTenantDirectory
from secrets_ledger.adapters.tenant_copy import StoredTenantCopy
from secrets_ledger.core.grouped_ledger import GroupedLedger
from secrets_ledger.core.settings import GROUP_NAME, Settings
from secrets_ledger.domain.errors import InvalidRequest
from secrets_ledger.domain.times import format_time, utc_now
from secrets_ledger.runtime import LedgerRuntime


def group_settings(settings: Settings) -> dict[str, Settings]:
    """Each group's settings, the home group's first: the configured ones, but for where
    another group is stored. Refuses groups without PostgreSQL, and two groups that name
    the same storage (their events would be counted twice)."""
    if settings.database_url is None:
        raise InvalidRequest("tenant groups need PostgreSQL: set LEDGER_DATABASE_URL")
    home_url = settings.database_url
    found = {settings.group_name: settings.model_copy(update={"groups": {}})}
    where = {(home_url.get_secret_value(), settings.database_schema): settings.group_name}
    for name, store in settings.groups.items():
        if not re.fullmatch(GROUP_NAME, name) or name in found:
            raise InvalidRequest(f"LEDGER_GROUPS: {name!r} is not a new group name"
                                 " (lower-case letters, digits and dashes)")
        url = store.database_url or home_url
        place = (url.get_secret_value(), store.database_schema)
        if place in where:
            raise InvalidRequest(f"LEDGER_GROUPS: {name} is stored where {where[place]} is")
        where[place] = name
        found[name] = settings.model_copy(update={
            "database_url": url, "database_schema": store.database_schema, "groups": {},
            "read_from_standby": store.read_from_standby})
    return found


class GroupedRuntime:
    def __init__(self, settings: Settings, *, follow: bool = True,
                 serving: bool = False) -> None:
        self.settings = settings
        self.groups: dict[str, LedgerRuntime] = {}
        try:
            for name, group in group_settings(settings).items():
                self.groups[name] = LedgerRuntime(group, follow=follow, serving=serving)
            home = self.groups[settings.group_name]
            directory = SqlTenantDirectory(home.storage.db, settings.group_name)
            directory.list_tenants_here(format_time(utc_now()))
        except BaseException:
            self.close()
            raise
        self.ledger = GroupedLedger(
            {name: group.ledger for name, group in self.groups.items()}, settings.group_name,
            directory, {name: StoredTenantCopy(group.storage)
                        for name, group in self.groups.items()})

    def lag(self) -> int:
        """The projection lag of the group furthest behind."""
        return max(group.lag() for group in self.groups.values())

    def close(self) -> None:
        for group in self.groups.values():
            group.close()

    def __enter__(self) -> GroupedRuntime:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


def open_runtime(settings: Settings, *, follow: bool = True, serving: bool = False
                 ) -> LedgerRuntime | GroupedRuntime:
    """The running ledger the settings describe: of one store, or of tenant groups."""
    if settings.groups:
        return GroupedRuntime(settings, follow=follow, serving=serving)
    return LedgerRuntime(settings, follow=follow, serving=serving)
