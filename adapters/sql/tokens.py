"""API tokens' rows (``ports.TokenRows``): only the SHA-256 of a token is stored."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from secrets_ledger.adapters.sql.database import Database, fetch_all, fetch_one
from secrets_ledger.core.ports import TokenRow
from secrets_ledger.core.principals import TOKEN_COLUMNS

COLUMNS = ", ".join(TOKEN_COLUMNS)


class SqlTokenRows:
    def __init__(self, db: Database) -> None:
        self.db = db

    def insert(self, row: TokenRow, description: str, created_at: str) -> None:
        token_id, token_hash, role, tenant, expires_at, revoked_at = row
        with self.db.transaction() as cur:
            cur.execute("INSERT INTO tokens (token_id, token_hash, role, tenant, description,"
                        " created_at, expires_at, revoked_at)"
                        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                        (token_id, token_hash, role, tenant, description, created_at,
                         expires_at, revoked_at))

    def by_hashes(self, digests: Sequence[str]) -> dict[str, TokenRow]:
        if not digests:
            return {}
        marks = ", ".join(["%s"] * len(digests))
        rows = fetch_all(self.db, f"SELECT {COLUMNS} FROM tokens"
                                  f" WHERE token_hash IN ({marks})", digests)
        return {str(row[1]): cast(TokenRow, tuple(row)) for row in rows}

    def revoke(self, tenant: str, token_id: str, at: str) -> bool:
        with self.db.transaction() as cur:
            cur.execute("UPDATE tokens SET revoked_at = %s WHERE token_id = %s AND tenant = %s"
                        " AND revoked_at IS NULL", (at, token_id, tenant))
            return cur.rowcount > 0

    def has_live_admin(self) -> bool:
        return fetch_one(self.db, "SELECT 1 FROM tokens WHERE role = 'admin'"
                                  " AND revoked_at IS NULL") is not None
