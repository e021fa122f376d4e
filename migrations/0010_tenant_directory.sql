-- Tenant groups (core.directory): which group's storage holds each tenant. Only the home
-- group's table is read; a tenant it does not list lives in the home group (every tenant
-- opened before groups were configured). Created in every group's schema, unused there.
-- moving_to: a move to that group is under way (core.tenant_move): calls wait for it.
CREATE TABLE tenant_directory (
    tenant TEXT PRIMARY KEY,
    group_name TEXT NOT NULL,
    placed_at TEXT NOT NULL,
    moving_to TEXT
);
-- How many moves began or ended: a process that sees it change forgets where tenants are.
CREATE TABLE tenant_directory_moves (
    moves BIGINT NOT NULL
);
INSERT INTO tenant_directory_moves (moves) VALUES (0);
-- A moved tenant's stream versions copied into the group it moved to (the group it came
-- from serves their changes in the feed of every tenant; the copies are not served twice).
CREATE TABLE tenant_copies (
    tenant TEXT NOT NULL,
    group_name TEXT NOT NULL,
    copied_upto BIGINT NOT NULL,
    PRIMARY KEY (tenant, group_name)
)
