"""Master key rotation: every tenant key re-wrapped under the next master key, which then
is the key in force; no event is touched (the chains' heads stay the same).

The protocol, for any number of servers and either key source:
1. every server is given the new key beside the old one (the embedded mode's servers
   read ``master.key.next`` within a heartbeat; environment-mode servers are restarted
   with ``LEDGER_NEW_MASTER_KEY``); they can then open keys wrapped under either;
2. once every live server holds it, one transaction re-wraps every tenant key, puts the
   new key in force and retires the old one; new tenant keys wait for that transaction
   and are then wrapped under the new key;
3. the old key may then be removed from every server (the embedded mode does it).
A rerun finds nothing left to do and says so.
"""

from __future__ import annotations

import time

from secrets_ledger.core.door import Door
from secrets_ledger.core.policy import UseCase
from secrets_ledger.core.ports import MasterKeySwitch
from secrets_ledger.core.principals import Credential
from secrets_ledger.domain.crypto import key_fingerprint

POLL_SECONDS = 0.25


class Keys:
    def __init__(self, door: Door) -> None:
        self.door = door

    async def rotate_master(self, caller: Credential, *, finish: bool = True
                            ) -> MasterKeySwitch:
        """Steps 1-2, then 3 unless told not to (tenant groups: each group switches to
        the same next key, and the last one retires the old key)."""
        return await self.door.in_thread(self._rotate_master, caller, finish)

    def _rotate_master(self, caller: Credential, finish: bool) -> MasterKeySwitch:
        self.door.admit(caller, None, UseCase.ROTATE_MASTER_KEY)
        master = self.door.ports.master_keys
        new_key = master.begin_rotation()
        self._wait_for_every_server(key_fingerprint(new_key))
        switched = self.door.envelope.switch_master_key(new_key)
        if finish:
            master.finish_rotation()
        return switched

    def _wait_for_every_server(self, key_id: str) -> None:
        """Gives running servers the time to notice the new key; the switch checks again
        under its lock and refuses if one still lacks it."""
        deadline = time.monotonic() + self.door.settings.master_rotation_wait
        while self.door.ports.processes.lacking(key_id) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
