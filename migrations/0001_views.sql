-- Projection views and their tracking positions (rebuilt by replay; never hold plaintext).
CREATE TABLE projection_tracking (
    view_name TEXT PRIMARY KEY,
    position BIGINT NOT NULL
);
INSERT INTO projection_tracking (view_name, position) VALUES ('current', 0), ('audit', 0);
CREATE TABLE tenants (
    tenant TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    shredded_at TEXT,
    key_version INTEGER NOT NULL
);
CREATE TABLE secret_versions (
    tenant_id TEXT NOT NULL,
    key TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    state TEXT NOT NULL,
    ciphertext TEXT,
    dek_id TEXT,
    key_version INTEGER NOT NULL,
    metadata TEXT,
    position BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, key, version)
);
CREATE TABLE current_secrets (
    tenant_id TEXT NOT NULL,
    key TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_at TEXT NOT NULL,
    deleted BOOLEAN NOT NULL,
    PRIMARY KEY (tenant_id, key)
);
CREATE TABLE key_timeline (
    tenant_id TEXT NOT NULL,
    key TEXT NOT NULL,
    position BIGINT NOT NULL,
    at TEXT NOT NULL,
    version INTEGER NOT NULL,
    live BOOLEAN NOT NULL,
    PRIMARY KEY (tenant_id, key, position)
);
CREATE TABLE idempotency_records (
    tenant_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT,
    position BIGINT NOT NULL,
    result TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (tenant_id, idempotency_key)
);
CREATE TABLE audit_trail (
    tenant_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    at TEXT NOT NULL,
    action TEXT NOT NULL,
    key TEXT,
    version INTEGER,
    actor TEXT NOT NULL,
    request_id TEXT NOT NULL,
    PRIMARY KEY (tenant_id, position)
);
CREATE INDEX audit_trail_by_key ON audit_trail (tenant_id, key, position);
CREATE INDEX audit_trail_by_actor ON audit_trail (tenant_id, actor, position)
