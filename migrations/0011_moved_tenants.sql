-- Tenant groups (core.tenant_move): a tenant moved to another group keeps its history
-- where it was, closed by a MovedOut event; the views say where it went, so that every
-- query and read there answers "moved" (the router then asks the tenant's new group).
ALTER TABLE tenants ADD COLUMN moved_to TEXT
