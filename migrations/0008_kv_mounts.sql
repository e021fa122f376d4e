-- Vault KV v2 (domain.kv, domain.mounts): each tenant's mounts, a secret's settings
-- (max_versions, cas_required, delete_version_after, custom_metadata) and the time each
-- version was soft-deleted.
CREATE TABLE mounts (
    tenant_id TEXT NOT NULL,
    path TEXT NOT NULL,
    mount_id TEXT NOT NULL,
    type TEXT NOT NULL,
    options TEXT NOT NULL,
    config TEXT NOT NULL,
    enabled_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, path)
);
ALTER TABLE managed_secrets ADD COLUMN settings TEXT;
ALTER TABLE managed_versions ADD COLUMN deleted_at TEXT
