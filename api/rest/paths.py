"""What the REST paths can address: a secret's path ends with its key, so a key's last
segment may not name one of the secret's sub-resources (contract v1). Keys imported from
the command line follow the same rule, so that every key the ledger holds for the REST
API can be read back through it."""

from __future__ import annotations

from secrets_ledger.domain import rules
from secrets_ledger.domain.errors import InvalidRequest

RESERVED_LAST_SEGMENTS = frozenset({"versions", "undelete", "rollback", "destroy"})


def rest_key(key: str) -> str:
    """A key these paths can address. (The core judges the ledger's own rules for keys; a
    key that breaks them is told that first.)"""
    if key.rsplit("/", 1)[-1] in RESERVED_LAST_SEGMENTS:
        rules.check_secret_key(key)
        raise InvalidRequest("the last segment of a secret key may not name a sub-resource")
    return key
