-- STS sessions an operator ended (`credentials revoke --access-key`): the
-- session row is deleted, so every version refuses its keys, and what a
-- walk by key needs of it is kept here until it would have expired, so
-- that a later revocation by the key that started it still reaches the
-- credentials it issued and the sessions it started (one that AssumeRole
-- made as it was being ended, say). Secrets are not kept.
--
-- Additive (migrate.CheckAdditive): the version before it serves, restarts
-- on and is rolled back to a store this one migrated; it never reads the
-- table, and refuses an ended session as one that does not exist.
-- migrate: additive
CREATE TABLE ended_sessions (
	access_key_id        TEXT PRIMARY KEY,
	source_access_key_id TEXT,
	source_arn           TEXT NOT NULL,
	role_name            TEXT NOT NULL,
	role_id              TEXT NOT NULL,
	session_name         TEXT NOT NULL,
	created_at           INTEGER NOT NULL,
	expires_at           INTEGER NOT NULL,
	ended_at             INTEGER NOT NULL
);
CREATE INDEX ended_sessions_source_key ON ended_sessions (source_access_key_id);
