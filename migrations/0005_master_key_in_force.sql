-- The master key in force: its fingerprint is the store's check value. A process that
-- does not hold that key refuses to start, and no tenant key is ever wrapped under
-- another one (inserts read this row under a share lock; a rotation updates it).
CREATE TABLE master_key_in_force (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    key_id TEXT NOT NULL,
    since TEXT NOT NULL
);
-- Master keys a rotation retired: a process configured with one of them only is told so.
CREATE TABLE retired_master_keys (
    key_id TEXT PRIMARY KEY,
    retired_at TEXT NOT NULL
);
-- The running servers and the master keys each holds, refreshed every second: a
-- rotation retires the old key only once every live server holds the new one.
CREATE TABLE ledger_processes (
    process_id TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    started_at TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    master_key_ids TEXT NOT NULL
)
