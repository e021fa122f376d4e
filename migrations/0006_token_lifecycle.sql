-- Who issued and who revoked each token (an actor: a token id, or cli/serve): the record
-- of admin tokens' changes, which belong to no tenant's audit trail.
ALTER TABLE tokens ADD COLUMN created_by TEXT;
ALTER TABLE tokens ADD COLUMN revoked_by TEXT
