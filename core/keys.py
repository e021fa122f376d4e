"""Master key rotation: every tenant key re-wrapped under the next master key; no event is
touched (the chains' heads stay the same)."""

from __future__ import annotations

from secrets_ledger.core.door import Door
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.principals import Credential


class Keys:
    def __init__(self, door: Door) -> None:
        self.door = door

    async def rotate_master(self, caller: Credential) -> int:
        """Returns how many tenant keys were re-wrapped (a key re-wrapped twice counts
        twice)."""
        return await self.door.in_thread(self._rotate_master, caller)

    def _rotate_master(self, caller: Credential) -> int:
        self.door.admit(caller, None, UseCase.ROTATE_MASTER_KEY)
        master = self.door.ports.master_keys
        new_key = master.begin_rotation()
        count = self.door.envelope.rewrap_tenant_keys(new_key)
        # A second pass catches a tenant key another process wrapped with the old master
        # key just before it noticed the rotation; the old key still opens it.
        count += self.door.envelope.rewrap_tenant_keys(new_key)
        master.finish_rotation()
        return count
