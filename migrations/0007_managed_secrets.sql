-- Managed secrets (the AWS Secrets Manager façade's secrets, domain.managed): their
-- metadata and labels, and each version's client id. Their versions' ciphertext lives
-- in secret_versions like native keys', under keys with a ':' (which no native key has).
CREATE TABLE managed_secrets (
    tenant_id TEXT NOT NULL,
    key TEXT NOT NULL,
    space TEXT NOT NULL,
    name TEXT NOT NULL,
    suffix TEXT NOT NULL,
    base INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    changed_at TEXT NOT NULL,
    description TEXT,
    kms_key_id TEXT,
    tags TEXT NOT NULL,
    labels TEXT NOT NULL,
    deleted_at TEXT,
    purge_after TEXT,
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX managed_secrets_by_space ON managed_secrets (tenant_id, space, name);
CREATE TABLE managed_versions (
    tenant_id TEXT NOT NULL,
    key TEXT NOT NULL,
    version INTEGER NOT NULL,
    client_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, key, version)
);
-- The AWS signing key of a tenant token (derived from the token when it is issued),
-- wrapped under the master key in force: never the token, never its hash.
ALTER TABLE tokens ADD COLUMN sigv4_key TEXT;
ALTER TABLE tokens ADD COLUMN sigv4_master_key_id TEXT
