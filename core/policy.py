"""Who may do what: roles grant permissions, each use case needs one permission.

The one table the whole ledger consults. Admin tokens span every tenant; the others
belong to one tenant and act only there. A tenant token used on another tenant is told
what an unknown tenant is told (``tenant_not_found``), so that it learns nothing about
which other tenants exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from secrets_ledger.core.principals import Principal, Role
from secrets_ledger.domain.errors import Forbidden, TenantNotFound

TENANT_ROLES: tuple[Role, ...] = ("writer", "reader", "auditor")


class Permission(StrEnum):
    READ_VALUES = "read_values"
    WRITE_VALUES = "write_values"
    READ_METADATA = "read_metadata"  # key listings and version lists, never values
    READ_HISTORY = "read_history"  # the audit trail and chain verification
    MANAGE_TENANTS = "manage_tenants"
    MANAGE_TOKENS = "manage_tokens"
    MANAGE_KEYS = "manage_keys"
    SHRED = "shred"
    FOLLOW_CHANGES = "follow_changes"  # the change feed: metadata, who changed what


POLICY: Mapping[Role, frozenset[Permission]] = {
    "admin": frozenset(Permission),
    "writer": frozenset({Permission.READ_VALUES, Permission.WRITE_VALUES,
                         Permission.READ_METADATA}),
    "reader": frozenset({Permission.READ_VALUES, Permission.READ_METADATA,
                         Permission.FOLLOW_CHANGES}),
    "auditor": frozenset({Permission.READ_METADATA, Permission.READ_HISTORY,
                          Permission.FOLLOW_CHANGES}),
}


class UseCase(StrEnum):
    """Every use case of the core. Global ones act on no single tenant."""

    OPEN_TENANT = "open_tenant"
    LIST_TENANTS = "list_tenants"
    ROTATE_TENANT_KEY = "rotate_tenant_key"
    SHRED_TENANT = "shred_tenant"
    ISSUE_TOKEN = "issue_token"
    REVOKE_TOKEN = "revoke_token"
    REVOKE_ANY_TOKEN = "revoke_any_token"  # admin tokens too
    LIST_TOKENS = "list_tokens"  # one tenant's
    LIST_ALL_TOKENS = "list_all_tokens"
    WRITE_SECRETS = "write_secrets"  # one PUT or a transaction of sets and deletes
    DELETE_SECRET = "delete_secret"
    UNDELETE_SECRET = "undelete_secret"
    ROLL_BACK_SECRET = "roll_back_secret"
    DESTROY_VERSIONS = "destroy_versions"
    IMPORT_SECRETS = "import_secrets"
    READ_VALUE = "read_value"
    LIST_KEYS = "list_keys"
    LIST_VERSIONS = "list_versions"
    READ_AUDIT_TRAIL = "read_audit_trail"
    VERIFY_TENANT = "verify_tenant"
    VERIFY_ALL = "verify_all"
    ROTATE_MASTER_KEY = "rotate_master_key"
    READ_LOG_PROOFS = "read_log_proofs"  # checkpoints and proofs: hashes only
    READ_LOG_LEAVES = "read_log_leaves"  # the records behind the leaves: who read what
    ROTATE_LOG_KEY = "rotate_log_key"
    FOLLOW_CHANGES = "follow_changes"
    FOLLOW_ALL_CHANGES = "follow_all_changes"  # every tenant's: admins


NEEDS: Mapping[UseCase, Permission] = {
    UseCase.OPEN_TENANT: Permission.MANAGE_TENANTS,
    UseCase.LIST_TENANTS: Permission.MANAGE_TENANTS,
    UseCase.ROTATE_TENANT_KEY: Permission.MANAGE_KEYS,
    UseCase.SHRED_TENANT: Permission.SHRED,
    UseCase.ISSUE_TOKEN: Permission.MANAGE_TOKENS,
    UseCase.REVOKE_TOKEN: Permission.MANAGE_TOKENS,
    UseCase.REVOKE_ANY_TOKEN: Permission.MANAGE_TOKENS,
    UseCase.LIST_TOKENS: Permission.MANAGE_TOKENS,
    UseCase.LIST_ALL_TOKENS: Permission.MANAGE_TOKENS,
    UseCase.WRITE_SECRETS: Permission.WRITE_VALUES,
    UseCase.DELETE_SECRET: Permission.WRITE_VALUES,
    UseCase.UNDELETE_SECRET: Permission.WRITE_VALUES,
    UseCase.ROLL_BACK_SECRET: Permission.WRITE_VALUES,
    UseCase.DESTROY_VERSIONS: Permission.WRITE_VALUES,
    UseCase.IMPORT_SECRETS: Permission.WRITE_VALUES,
    UseCase.READ_VALUE: Permission.READ_VALUES,
    UseCase.LIST_KEYS: Permission.READ_METADATA,
    UseCase.LIST_VERSIONS: Permission.READ_METADATA,
    UseCase.READ_AUDIT_TRAIL: Permission.READ_HISTORY,
    UseCase.VERIFY_TENANT: Permission.READ_HISTORY,
    UseCase.VERIFY_ALL: Permission.READ_HISTORY,
    UseCase.ROTATE_MASTER_KEY: Permission.MANAGE_KEYS,
    UseCase.READ_LOG_PROOFS: Permission.READ_METADATA,
    UseCase.READ_LOG_LEAVES: Permission.READ_HISTORY,
    UseCase.ROTATE_LOG_KEY: Permission.MANAGE_KEYS,
    UseCase.FOLLOW_CHANGES: Permission.FOLLOW_CHANGES,
    UseCase.FOLLOW_ALL_CHANGES: Permission.FOLLOW_CHANGES,
}

GLOBAL_USE_CASES = frozenset({UseCase.OPEN_TENANT, UseCase.LIST_TENANTS, UseCase.VERIFY_ALL,
                              UseCase.ROTATE_MASTER_KEY, UseCase.REVOKE_ANY_TOKEN,
                              UseCase.LIST_ALL_TOKENS, UseCase.ROTATE_LOG_KEY,
                              UseCase.FOLLOW_ALL_CHANGES})


def authorize(principal: Principal, tenant: str | None, use_case: UseCase) -> None:
    """Raises unless ``principal`` may run ``use_case`` on ``tenant`` (None: a global use
    case). The checks come in the contract's order: the tenant's scope, then the role."""
    if principal.tenant is not None:
        if use_case in GLOBAL_USE_CASES or tenant is None:
            raise Forbidden("this needs an admin token")
        if principal.tenant != tenant:
            raise TenantNotFound("no such tenant")
    if NEEDS[use_case] not in POLICY[principal.role]:
        raise Forbidden(f"the {principal.role} role may not do this")
