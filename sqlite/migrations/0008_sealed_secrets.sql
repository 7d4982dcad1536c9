-- Secrets at rest (issue 13). sealed = 1: secret is a secretbox value; 0: a
-- row from before, in the clear until the next open with a key seals it.
-- Sessions keep the SHA-256 of their token, never the token.
ALTER TABLE access_keys ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN token_sha256 BLOB;

-- The keys secrets are sealed under, by id: 'current' seals new values;
-- 'retiring' keys, during a rotation, still open the values not yet
-- resealed. file is where a process that was not given the key reads it.
CREATE TABLE secret_keys (
	id    TEXT PRIMARY KEY,
	file  TEXT NOT NULL,
	state TEXT NOT NULL CHECK (state IN ('current', 'retiring'))
);
CREATE UNIQUE INDEX secret_keys_one_current ON secret_keys (state) WHERE state = 'current';
