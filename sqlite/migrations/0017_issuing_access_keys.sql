-- The access key that signed the call that issued a credential, and the
-- one that signed the AssumeRole that started a session: `credentials
-- revoke --access-key` revokes what one key obtained, directly and through
-- the sessions it started, where an assumed-role ARN may be another
-- caller's too. NULL in rows from before: unknown. No index on
-- credentials: every issue would write one more page for it, and only an
-- operator's revocation reads the column.
--
-- Additive (migrate.CheckAdditive): the version before it serves, restarts
-- on and is rolled back to a store this one migrated; its rows leave these
-- columns NULL.
-- migrate: additive
ALTER TABLE credentials ADD COLUMN access_key_id TEXT;
ALTER TABLE sessions ADD COLUMN source_access_key_id TEXT;
CREATE INDEX sessions_source_key ON sessions (source_access_key_id);
