"""The store's check value: the fingerprint of the master key in force.

A process refuses to start unless it holds that key, so that a wrong key never looks
healthy and nothing is ever wrapped under a key the store does not know. A store made
before the check existed gets its value on the first start: the configured key, if it
wraps the store's tenant keys (or there are none yet).
"""

from __future__ import annotations

from collections.abc import Collection

from secrets_ledger.adapters.sql.database import Cursor, Database
from secrets_ledger.adapters.sql.processes import SqlProcesses
from secrets_ledger.domain.errors import Unavailable
from secrets_ledger.domain.times import format_time, utc_now


def check_master_key(db: Database, held: Collection[str], primary_id: str, source: str,
                     joining: SqlProcesses | None = None) -> str:
    """The fingerprint of the key in force, which this process holds; Unavailable (one line
    for the operator) otherwise. ``joining``: record this server in the same transaction,
    so that a rotation finishing at this moment either sees it or is seen by it."""
    with db.transaction() as cur:
        cur.execute("SELECT key_id FROM master_key_in_force WHERE singleton = 1"
                    + db.row_lock(exclusive=False))
        row = cur.fetchone()
        in_force = str(row[0]) if row is not None else _first_key_in_force(
            cur, held, primary_id, source)
        if in_force not in held:
            cur.execute("SELECT key_id, retired_at FROM retired_master_keys")
            retired = {str(key_id): str(when) for key_id, when in cur.fetchall()}
            raise Unavailable(_refusal(held, in_force, retired, source))
        if joining is not None:
            joining.join(cur, held)
    return in_force


def _first_key_in_force(cur: Cursor, held: Collection[str], primary_id: str,
                        source: str) -> str:
    cur.execute("SELECT master_key_id, COUNT(*) FROM tenant_keys GROUP BY master_key_id")
    wrapping = {str(key_id): int(count) for key_id, count in cur.fetchall()}
    opened = sorted((key_id for key_id in wrapping if key_id in held),
                    key=lambda key_id: (key_id != primary_id, -wrapping[key_id]))
    if wrapping and not opened:
        raise Unavailable(f"the master key in {source} opens none of this ledger's"
                          f" {sum(wrapping.values())} tenant keys: configure the key they"
                          " were wrapped with")
    in_force = opened[0] if opened else primary_id
    cur.execute("INSERT INTO master_key_in_force (singleton, key_id, since) VALUES (1, %s, %s)"
                " ON CONFLICT DO NOTHING", (in_force, format_time(utc_now())))
    cur.execute("SELECT key_id FROM master_key_in_force WHERE singleton = 1")
    row = cur.fetchone()
    return in_force if row is None else str(row[0])


def _refusal(held: Collection[str], in_force: str, retired: dict[str, str],
             source: str) -> str:
    was_retired = sorted(key_id for key_id in held if key_id in retired)
    if was_retired:
        return (f"the master key in {source} ({was_retired[0]}) was retired by a rotation"
                f" at {retired[was_retired[0]]}: configure the key in force ({in_force})")
    return (f"the master key in {source} does not open this ledger: its tenant keys are"
            f" wrapped under master key {in_force}, which this process does not hold")
