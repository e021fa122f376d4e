-- How far the current view has applied each tenant's stream: a query on one tenant
-- waits for that tenant's own events only, not for every read recorded since.
ALTER TABLE tenants ADD COLUMN version BIGINT NOT NULL DEFAULT 0
