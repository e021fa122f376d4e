"""API tokens' rows (``ports.TokenRows``): only the SHA-256 of a token is stored."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from secrets_ledger.adapters.sql.database import Database, fetch_all, fetch_one
from secrets_ledger.core.ports import TokenRow
from secrets_ledger.core.principals import BOOTSTRAP_ID_PREFIX, TOKEN_COLUMNS, TokenRecord

COLUMNS = ", ".join(TOKEN_COLUMNS)
RECORD_COLUMNS = ", ".join(TokenRecord._fields)


class SqlTokenRows:
    def __init__(self, db: Database) -> None:
        self.db = db

    def insert(self, row: TokenRow, description: str, created_at: str, created_by: str
               ) -> bool:
        token_id, token_hash, role, tenant, expires_at, revoked_at = row
        with self.db.transaction() as cur:
            # Two processes starting with the same new bootstrap token: one row, no error.
            cur.execute("INSERT INTO tokens (token_id, token_hash, role, tenant, description,"
                        " created_at, created_by, expires_at, revoked_at)"
                        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                        " ON CONFLICT (token_hash) DO NOTHING",
                        (token_id, token_hash, role, tenant, description, created_at,
                         created_by, expires_at, revoked_at))
            return cur.rowcount > 0

    def by_hashes(self, digests: Sequence[str]) -> dict[str, TokenRow]:
        if not digests:
            return {}
        marks = ", ".join(["%s"] * len(digests))
        rows = fetch_all(self.db, f"SELECT {COLUMNS} FROM tokens"
                                  f" WHERE token_hash IN ({marks})", digests)
        return {str(row[1]): cast(TokenRow, tuple(row)) for row in rows}

    def by_id(self, token_id: str) -> TokenRow | None:
        row = fetch_one(self.db, f"SELECT {COLUMNS} FROM tokens WHERE token_id = %s",
                        (token_id,))
        return None if row is None else cast(TokenRow, tuple(row))

    def revoke(self, token_ids: Sequence[str], at: str, by: str) -> list[str]:
        revoked = []
        with self.db.transaction() as cur:
            for token_id in token_ids:
                cur.execute("UPDATE tokens SET revoked_at = %s, revoked_by = %s"
                            " WHERE token_id = %s AND revoked_at IS NULL", (at, by, token_id))
                if cur.rowcount > 0:
                    revoked.append(token_id)
        return revoked

    def live_bootstrap_ids(self) -> list[str]:
        rows = fetch_all(self.db, "SELECT token_id FROM tokens WHERE substr(token_id, 1, %s)"
                                  " = %s AND revoked_at IS NULL ORDER BY created_at, token_id",
                         (len(BOOTSTRAP_ID_PREFIX), BOOTSTRAP_ID_PREFIX))
        return [str(row[0]) for row in rows]

    def listing(self, tenant: str | None) -> list[TokenRecord]:
        where, params = ("WHERE tenant = %s", (tenant,)) if tenant is not None else ("", ())
        rows = fetch_all(self.db, f"SELECT {RECORD_COLUMNS} FROM tokens {where}"
                                  " ORDER BY created_at, token_id", params)
        return [TokenRecord(*row) for row in rows]

    def has_live_admin(self) -> bool:
        return fetch_one(self.db, "SELECT 1 FROM tokens WHERE role = 'admin'"
                                  " AND revoked_at IS NULL") is not None

    def signing_row(self, token_id: str) -> tuple[TokenRow, str, str] | None:
        row = fetch_one(self.db, f"SELECT {COLUMNS}, sigv4_key, sigv4_master_key_id"
                                 " FROM tokens WHERE token_id = %s AND sigv4_key IS NOT NULL",
                        (token_id,))
        if row is None:
            return None
        return cast(TokenRow, tuple(row[:6])), str(row[6]), str(row[7])
