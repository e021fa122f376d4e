-- The change feed (core.changes) reads the audit trail's changes (every action but
-- "read") in store order, and names each change's record in its tenant's transparency
-- log: the tenant stream's version (record_version; NULL for a read). Rows projected
-- before this column existed lack it, so the audit trail is projected again from the
-- start (the projector does it in the background: a view is rebuilt from the events).
ALTER TABLE audit_trail ADD COLUMN record_version BIGINT;
DELETE FROM audit_trail;
UPDATE projection_tracking SET position = 0 WHERE view_name = 'audit';
-- Every tenant's changes in store order (the feed of all tenants, and the fan-out that
-- follows the store); a tenant's own are read through the primary key.
CREATE INDEX audit_trail_changes ON audit_trail (position) WHERE action <> 'read'
