-- The mutable key store: destroying a row here is what crypto-shreds values.
-- Tenant keys are wrapped by the master key (never stored here); data keys by a tenant key.
CREATE TABLE tenant_keys (
    tenant_id TEXT NOT NULL,
    key_version INTEGER NOT NULL,
    wrapped TEXT NOT NULL,
    master_key_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, key_version)
);
CREATE TABLE data_keys (
    dek_id TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL,
    key_version INTEGER NOT NULL,
    wrapped TEXT NOT NULL
);
CREATE INDEX data_keys_by_tenant ON data_keys (tenant_id)
