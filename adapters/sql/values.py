"""Value reads, many in one statement (``ports.ValueLookups``): for each (tenant, token,
key, version or time) asked, the token's row, the head of the tenant's stream against the
version of it the views hold (read-your-writes, in the same snapshot), the key's current
state, the version's row, and the rows of the keys that open it. Every join is on a
unique key, so each lookup yields exactly one row; the backends differ only in how the
lookups are handed over and where the events table is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from secrets_ledger.core.ports import ValueLookup, ValueRow

_COLUMNS = (
    "k.token_id, k.token_hash, k.role, k.tenant, k.expires_at, k.revoked_at,"
    " (SELECT MAX(e.originator_version) FROM {events} e"
    " WHERE e.originator_id = r.tenant_uuid),"
    " t.version, t.shredded_at, c.version, c.deleted, {at_version}, {at_live},"
    " v.version, v.state, v.metadata, v.created_at, v.created_by, v.ciphertext, v.dek_id,"
    " d.wrapped, tk.key_version, tk.wrapped, tk.master_key_id, {managed}, t.moved_to"
)
# A managed secret's incarnation and the client id of the version read (domain.managed):
# joined only in a batch that reads one.
_MANAGED_COLUMNS = ("m.suffix, m.labels, m.purge_after, mv.client_id, m.base, m.settings,"
                    " mv.deleted_at, mt.config")
_MANAGED_JOINS = (
    " LEFT JOIN managed_secrets m ON m.tenant_id = r.tenant_id AND m.key = r.key"
    " LEFT JOIN managed_versions mv ON mv.tenant_id = v.tenant_id AND mv.key = v.key"
    " AND mv.version = v.version"
    # A Vault key's mount (its space is kv:<mount id>): a tenant has few mounts.
    " LEFT JOIN mounts mt ON mt.tenant_id = m.tenant_id AND 'kv:' || mt.mount_id = m.space"
)
_NO_MANAGED_COLUMNS = ", ".join(["NULL"] * (_MANAGED_COLUMNS.count(",") + 1))
_JOINS = (
    " LEFT JOIN tokens k ON k.token_hash = r.token_hash"
    " LEFT JOIN tenants t ON t.tenant_id = r.tenant_id"
    " LEFT JOIN current_secrets c ON c.tenant_id = r.tenant_id AND c.key = r.key"
    "{timeline}"
    " LEFT JOIN secret_versions v ON v.tenant_id = c.tenant_id AND v.key = c.key"
    " AND v.version = {version}"
    " LEFT JOIN data_keys d ON d.dek_id = v.dek_id AND d.tenant_id = v.tenant_id"
    " LEFT JOIN tenant_keys tk ON tk.tenant_id = d.tenant_id"
    " AND tk.key_version = d.key_version"
)
# The version current at the time asked: the key's last change up to then.
_TIMELINE = (
    " LEFT JOIN key_timeline a ON r.at IS NOT NULL AND a.tenant_id = r.tenant_id"
    " AND a.key = r.key AND a.position = (SELECT MAX(l.position) FROM key_timeline l"
    " WHERE l.tenant_id = r.tenant_id AND l.key = r.key AND l.at <= r.at)"
)
LOOKUP_COLUMNS = "tenant_uuid, tenant_id, token_hash, key, version, at"
PLAIN_LOOKUP_COLUMNS = "tenant_uuid, tenant_id, token_hash, key"
"""The columns of a batch in which no lookup names a version or a time (nearly always:
a client reads the current value)."""


def value_statement(with_clause: str, source: str, events_table: str, *, versions: bool,
                    times: bool, managed: bool = False) -> str:
    """The statement, given the lookups as a row source ``r`` (``LOOKUP_COLUMNS``, or
    ``PLAIN_LOOKUP_COLUMNS`` when neither ``versions`` nor ``times`` are asked for, and an
    ordinal ``n``), defined by ``with_clause`` and named in ``source``. The key timeline is
    joined only when a lookup asks for a time, the managed secrets' rows only when a
    lookup reads one."""
    columns = _COLUMNS.format(events=events_table, at_version="a.version" if times else "NULL",
                              at_live="a.live" if times else "NULL",
                              managed=_MANAGED_COLUMNS if managed else _NO_MANAGED_COLUMNS)
    version = ("COALESCE(r.version, a.version, c.version)" if times else
               "COALESCE(r.version, c.version)" if versions else "c.version")
    joins = _JOINS.format(timeline=_TIMELINE if times else "", version=version)
    if managed:
        joins += _MANAGED_JOINS
    return f"{with_clause}SELECT {columns} FROM {source}{joins} ORDER BY r.n"


def reads_managed(lookups: Sequence[ValueLookup]) -> bool:
    """Whether a batch reads a managed secret (whose key has a ``:``, as no native one)."""
    return any(":" in lookup.key for lookup in lookups)


def value_rows(rows: Sequence[Sequence[Any]], asked: int) -> list[ValueRow]:
    if len(rows) != asked:  # every lookup joins to exactly one row
        raise RuntimeError("the read statement did not return one row per read")
    return [ValueRow._make(row) for row in rows]
