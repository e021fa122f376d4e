"""The change feed across tenant groups: a tenant's changes come from its group; the
changes of every tenant (admins) are every group's feed, merged.

Each group numbers its positions on its own, so the cursor of the merged feed is a
position per group, ``home:120,blue:87`` (a group it does not name: from its start;
``now``: past every change stored in every group). A page takes up to ``limit`` changes
from the groups' pages, merged by time but each group's in its own order, and gives each
change the cursor with its group's position moved past it: a subscriber resumes right
after the last change it saw, missing nothing and seeing nothing twice, however the
groups interleave. No global sequence is assumed anywhere.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Collection
from typing import Any

from secrets_ledger.core.changes import NOW, ChangePage, FeedCounts
from secrets_ledger.core.feed_ports import ChangeRow
from secrets_ledger.core.groups import ByTenant
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.principals import Credential, Principal
from secrets_ledger.domain.errors import InvalidRequest

Vector = dict[str, int]


class GroupedChanges(ByTenant):
    async def page(self, caller: Credential, tenant: str | None, *, after: str = "0",
                   prefix: str = "", actions: Collection[str] | None = None,
                   limit: int = 100, wait: float = 0.0) -> ChangePage:
        if tenant is not None:
            page: ChangePage = await self.groups.on_tenant(
                "changes", "page", caller, tenant, after=after, prefix=prefix,
                actions=actions, limit=limit, wait=wait)
            return page
        principal = await self._admitted(caller)
        vector = await self._start(principal, after, prefix, actions)
        return await self._merged(principal, vector, prefix, actions, limit, wait)

    async def follow(self, caller: Credential, tenant: str | None, *, after: str = "0",
                     prefix: str = "", actions: Collection[str] | None = None,
                     heartbeat: float | None = None, limit: int = 500,
                     deliver: Any = None) -> AsyncIterator[ChangePage]:
        if tenant is not None:
            pages: AsyncIterator[ChangePage] = await self.groups.on_tenant(
                "changes", "follow", caller, tenant, after=after, prefix=prefix,
                actions=actions, heartbeat=heartbeat, limit=limit, deliver=deliver)
            return pages
        principal = await self._admitted(caller)
        vector = await self._start(principal, after, prefix, actions)
        return self._pages(caller, principal, vector, prefix, actions, limit,
                           heartbeat or self.groups.home.door.settings.feed_heartbeat)

    def counts(self) -> FeedCounts:
        counts = [ledger.changes.counts() for ledger in self.groups.ledgers.values()]
        return FeedCounts(*map(sum, zip(*counts, strict=True)))

    def close(self) -> None:
        for ledger in self.groups.ledgers.values():
            ledger.changes.close()

    async def _admitted(self, caller: Credential) -> Principal:
        principal = await self.groups.principal(caller)
        await self.groups.home.door.admitted(principal, None, UseCase.FOLLOW_ALL_CHANGES)
        return principal

    async def _pages(self, caller: Credential, principal: Principal, vector: Vector,
                     prefix: str, actions: Collection[str] | None, limit: int,
                     heartbeat: float) -> AsyncIterator[ChangePage]:
        """Pages as soon as any group has changes, an empty one at each heartbeat (when
        the caller's token is checked again: a revoked one ends the stream)."""
        beat = time.monotonic() + heartbeat
        while True:
            page = await self._merged(principal, vector, prefix, actions, limit,
                                      max(0.0, beat - time.monotonic()))
            vector = parse_vector(page.cursor_text, self.groups.ledgers)
            if time.monotonic() >= beat:
                principal = await self._admitted(caller)
                beat = time.monotonic() + heartbeat
            elif not page.items:
                continue
            yield page

    async def _start(self, principal: Principal, after: str, prefix: str,
                     actions: Collection[str] | None) -> Vector:
        """The cursor as positions; ``now`` is asked of each group (and the filters are
        judged by every group's own feed)."""
        if after != NOW:
            return parse_vector(after, self.groups.ledgers)
        pages = await asyncio.gather(*(
            ledger.changes.page(principal, None, after=NOW, prefix=prefix, actions=actions,
                                limit=1) for ledger in self.groups.ledgers.values()))
        return {name: page.cursor for name, page in zip(self.groups.ledgers, pages,
                                                         strict=True)}

    async def _merged(self, principal: Principal, vector: Vector, prefix: str,
                      actions: Collection[str] | None, limit: int, wait: float) -> ChangePage:
        async def page_of(group: str, waiting: float) -> ChangePage:
            return await self.groups.ledgers[group].changes.page(
                principal, None, after=str(vector[group]), prefix=prefix, actions=actions,
                limit=limit, wait=waiting)

        names = list(self.groups.ledgers)
        pages = dict(zip(names, await asyncio.gather(*(page_of(name, 0) for name in names)),
                         strict=True))
        if wait and not any(page.items for page in pages.values()):
            vector = {name: page.cursor for name, page in pages.items()}  # past skipped ones
            waits = {asyncio.ensure_future(page_of(name, wait)): name for name in names}
            done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            pages = {name: ChangePage([], vector[name]) for name in names}
            pages.update({waits[task]: task.result() for task in done})
        copies = await self.groups.home.door.in_thread(self.groups.directory.copies)
        return merge(vector, pages, limit, copies)


def merge(vector: Vector, pages: dict[str, ChangePage], limit: int,
          copies: dict[tuple[str, str], int] | None = None) -> ChangePage:
    """Up to ``limit`` of the pages' changes, the earliest first but each group's in its
    own order, each with its cursor; the page's cursor is past every change it holds,
    and past what a group's filter skipped where that group's page was taken whole.
    A moved tenant's changes copied into its new group (``copies``: (tenant, group) ->
    up to which stream version) are passed over there: the group it left serves them."""
    copies = copies or {}
    vector = dict(vector)
    heads = {name: deque(page.items) for name, page in pages.items()}
    items: list[ChangeRow] = []
    ids: list[str] = []
    while len(items) < limit:
        ready = [name for name in heads if heads[name]]
        if not ready:
            break
        name = min(ready, key=lambda group: heads[group][0].at)
        item = heads[name].popleft()
        vector[name] = item.position
        if item.stream_version <= copies.get((item.tenant, name), 0):
            continue
        items.append(item)
        ids.append(vector_text(vector))
    for name, page in pages.items():
        if not heads[name]:
            vector[name] = max(vector[name], page.cursor)
    return ChangePage(items, 0, resume=vector_text(vector), ids=ids)


def vector_text(vector: Vector) -> str:
    return ",".join(f"{name}:{position}" for name, position in vector.items())


def parse_vector(text: str, groups: Collection[str]) -> Vector:
    """A cursor of the merged feed: ``0`` (every group from its start) or as issued."""
    vector = dict.fromkeys(groups, 0)
    if text == "0":
        return vector
    for part in text.split(",") if len(text) <= 40 * len(vector) else ["!"]:
        name, _, position = part.partition(":")
        if (name not in vector or not (position.isascii() and position.isdigit())
                or len(position) > 19):
            raise InvalidRequest("a cursor of every tenant's changes is one this server"
                                 " issued (<group>:<position>,...), '0' or 'now'")
        vector[name] = int(position)
    return vector
