-- Tenant groups (core.directory): which group's storage holds each tenant. Only the home
-- group's table is read; a tenant it does not list lives in the home group (every tenant
-- opened before groups were configured). Created in every group's schema, unused there.
CREATE TABLE tenant_directory (
    tenant TEXT PRIMARY KEY,
    group_name TEXT NOT NULL,
    placed_at TEXT NOT NULL
)
