"""The change feed: each tenant's changes (never a value) in commit order, resumable.

A subscriber holds a cursor: the position of the last change it saw (``0``: before the
first). A page returns the changes after it at once; a wait returns as soon as one is
projected; a stream (``follow``) yields pages for as long as the subscriber stays,
an empty page (a heartbeat, with the cursor it may resume from) when nothing happened.
Positions are the store's order, the same in every process and after every replay, so
a cursor resumes anywhere: nothing is missed and nothing is seen twice.

A change is served only once every view holds it (``ChangeRows.projected``): a
subscriber that reads a key after seeing its change reads at least that version.
Each change names its tenant stream's version (gap-free per tenant) and that record's
leaf in the tenant's transparency log, so that a subscriber can prove it missed none.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from typing import NamedTuple

from secrets_ledger.core.change_hub import ChangeFilter, ChangeHub, Deliver
from secrets_ledger.core.door import Door
from secrets_ledger.core.feed_ports import Advances, ChangeRow, ChangeRows
from secrets_ledger.core.pages import check_limit, check_prefix
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.principals import Credential
from secrets_ledger.domain.errors import InvalidRequest
from secrets_ledger.domain.tenant import tenant_id_for

CHANGE_ACTIONS = frozenset({
    "tenant_opened", "write", "delete", "undelete", "destroy", "rollback", "key_rotated",
    "token_created", "token_revoked", "shredded", "metadata_updated", "labels_moved",
    "mount_enabled", "mount_configured", "mount_disabled", "moved_out",
    "moved_in"})
"""Every action of the audit trail but ``read``: a read changes nothing."""
MAX_WAIT = 60.0
NOW = "now"  # the cursor past every change stored so far: follow from here on


class FeedCounts(NamedTuple):
    """What this process's change feed did since it started (metrics)."""

    store_reads: int  # the hub's reads of the store
    delivered_pages: int  # pages written to a caught-up stream by the fan-out itself
    refused_pages: int  # ... refused by the stream (its client slow, or gone)


@dataclass(frozen=True)
class ChangePage:
    items: list[ChangeRow]
    cursor: int  # resume after this (past the items, and past what the filter skipped)
    # Tenant groups' feed of every tenant (core.grouped_feed): the cursor is a position per
    # group, as text, and so is each item's own (then ``cursor`` is 0).
    resume: str | None = None
    ids: list[str] | None = None

    @property
    def cursor_text(self) -> str:
        return self.resume if self.resume is not None else str(self.cursor)


class ChangeFeed:
    def __init__(self, door: Door, rows: ChangeRows, advances: Advances) -> None:
        self.door = door
        self.rows = rows
        self._hub: ChangeHub | None = None
        advances.on_advance(self._poke)

    def _poke(self) -> None:
        hub = self._hub
        if hub is not None:
            hub.poke()

    def close(self) -> None:
        if self._hub is not None:
            self._hub.stop()

    def counts(self) -> FeedCounts:
        hub = self._hub
        if hub is None:
            return FeedCounts(0, 0, 0)
        return FeedCounts(hub.fetches, hub.delivered_pages, hub.refused_pages)

    def hub(self) -> ChangeHub:
        """This event loop's hub (a new loop, e.g. another ``asyncio.run``, gets its own)."""
        hub = self._hub
        if hub is None or hub.loop is not asyncio.get_running_loop():
            hub = self._hub = ChangeHub(self.rows, self.door.in_thread)
        return hub

    async def page(self, caller: Credential, tenant: str | None, *, after: str = "0",
                   prefix: str = "", actions: Collection[str] | None = None,
                   limit: int = 100, wait: float = 0.0) -> ChangePage:
        """The changes after the cursor ``after`` (of ``tenant``, or of every tenant when
        None: admins), at most ``limit``: every change stored before the call, once
        projected; with ``wait``, up to that many seconds for the first one."""
        which = await self._admit(caller, tenant, prefix, actions)
        check_limit(limit)
        if not 0 <= wait <= MAX_WAIT:
            raise InvalidRequest(f"wait is 0-{MAX_WAIT:g} seconds")
        if wait:
            return await self._next(which, await self._cursor(after), limit, wait)
        await self.door.in_thread(self.door.await_views)  # the caller's own writes too
        return await self._stored(which, await self._cursor(after, views_awaited=True), None,
                                  limit)

    async def follow(self, caller: Credential, tenant: str | None, *, after: str = "0",
                     prefix: str = "", actions: Collection[str] | None = None,
                     heartbeat: float | None = None, limit: int = 500,
                     deliver: Deliver | None = None) -> AsyncIterator[ChangePage]:
        """Once the caller is admitted: pages for as long as the caller iterates, each as
        soon as there are changes, and an empty one (a heartbeat) when ``heartbeat``
        seconds pass without one. The token is checked again at each heartbeat: a
        revoked one ends the stream (its error raised by the iterator). With
        ``deliver``, a subscriber that has caught up is sent its pages through it, by
        the hub, while the iterator waits (see ChangeHub)."""
        which = await self._admit(caller, tenant, prefix, actions)
        check_limit(limit)
        return self._pages(caller, which, await self._cursor(after),
                           heartbeat or self.door.settings.feed_heartbeat, limit, deliver)

    async def _pages(self, caller: Credential, which: ChangeFilter, cursor: int,
                     heartbeat: float, limit: int, deliver: Deliver | None
                     ) -> AsyncIterator[ChangePage]:
        use_case = (UseCase.FOLLOW_CHANGES if which.tenant is not None
                    else UseCase.FOLLOW_ALL_CHANGES)
        beat = time.monotonic() + heartbeat
        while True:
            page = await self._next(which, cursor, limit,
                                    0 if deliver else beat - time.monotonic())
            cursor = page.cursor
            if not page.items and deliver is not None:  # caught up: the hub delivers
                cursor = await self.hub().delivered(which, cursor, limit, deliver,
                                                    beat - time.monotonic())
                if time.monotonic() < beat:  # a delivery refused: the iterator goes on
                    continue
                page = ChangePage([], cursor)
            if time.monotonic() >= beat:
                await self.door.admitted(caller, which.tenant, use_case)
                beat = time.monotonic() + heartbeat
            yield page

    async def _admit(self, caller: Credential, tenant: str | None, prefix: str,
                     actions: Collection[str] | None) -> ChangeFilter:
        use_case = UseCase.FOLLOW_CHANGES if tenant is not None else UseCase.FOLLOW_ALL_CHANGES
        await self.door.admitted(caller, tenant, use_case)
        check_prefix(prefix)
        if actions is not None and not set(actions) <= CHANGE_ACTIONS:
            raise InvalidRequest("actions are: " + ", ".join(sorted(CHANGE_ACTIONS)))
        if tenant is not None:
            await self.door.in_thread(self.door.tenant_row, tenant)  # a known tenant's
        return ChangeFilter(tenant, prefix, None if actions is None else frozenset(actions))

    async def _cursor(self, after: str, *, views_awaited: bool = False) -> int:
        hub = self.hub()
        await hub.started()
        if after == NOW:  # past every change stored before this call
            if not views_awaited:
                await self.door.in_thread(self.door.await_views)
            return int(await self.door.in_thread(self.rows.projected))
        if not (after.isascii() and after.isdigit() and len(after) <= 19):
            raise InvalidRequest("a cursor is a change's position (digits), or 'now'")
        cursor = int(after)
        if cursor > hub.head and cursor > await self.door.in_thread(self.rows.projected):
            raise InvalidRequest("the cursor is past the last change recorded")
        return cursor

    async def _next(self, which: ChangeFilter, after: int, limit: int,
                    wait: float) -> ChangePage:
        hub = self.hub()
        deadline = time.monotonic() + wait
        while True:
            await hub.started()
            held = hub.since(which, after, limit)
            if held is None:  # older than the hub holds: the store answers, up to the hub
                return await self._stored(which, after, hub.head, limit)
            found, cursor = held
            left = deadline - time.monotonic()
            if found or left <= 0:
                return ChangePage(found, cursor)
            await hub.moved_past(cursor, left)
            after = cursor

    async def _stored(self, which: ChangeFilter, after: int, upto: int | None,
                      limit: int) -> ChangePage:
        """A page read from the store, up to ``upto`` (None: what the views hold)."""
        tenant_id = None if which.tenant is None else str(tenant_id_for(which.tenant))
        rows, bound = await self.door.in_thread(
            lambda: self.rows.changes(tenant_id, after, limit, upto=upto,
                                      prefix=which.prefix, actions=which.actions))
        return ChangePage(rows, rows[-1].position if len(rows) == limit else max(after, bound))
