-- IAM users, groups and roles in one table; names are unique per kind
-- regardless of case, as in IAM.
CREATE TABLE entities (
	kind       TEXT NOT NULL,
	name       TEXT NOT NULL COLLATE NOCASE,
	id         TEXT NOT NULL UNIQUE,
	path       TEXT NOT NULL,
	arn        TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	assume_role_policy   TEXT NOT NULL DEFAULT '',
	description          TEXT NOT NULL DEFAULT '',
	max_session_duration INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (kind, name)
);
INSERT INTO entities (kind, name, id, path, arn, created_at)
	SELECT 'user', name, id, path, arn, created_at FROM users;

CREATE TABLE inline_policies (
	kind     TEXT NOT NULL,
	owner    TEXT NOT NULL COLLATE NOCASE,
	name     TEXT NOT NULL COLLATE NOCASE,
	document TEXT NOT NULL,
	PRIMARY KEY (kind, owner, name)
);
INSERT INTO inline_policies (kind, owner, name, document)
	SELECT 'user', user_name, name, document FROM user_policies;

CREATE TABLE access_keys_new (
	id         TEXT PRIMARY KEY,
	secret     TEXT NOT NULL,
	user_name  TEXT NOT NULL COLLATE NOCASE,
	status     TEXT NOT NULL,
	created_at INTEGER NOT NULL
);
INSERT INTO access_keys_new SELECT id, secret, user_name, status, created_at FROM access_keys;
DROP TABLE access_keys;
ALTER TABLE access_keys_new RENAME TO access_keys;
CREATE INDEX access_keys_user ON access_keys (user_name);
DROP TABLE user_policies;
DROP TABLE users;

CREATE TABLE managed_policies (
	arn         TEXT PRIMARY KEY,
	name        TEXT NOT NULL COLLATE NOCASE UNIQUE,
	id          TEXT NOT NULL UNIQUE,
	path        TEXT NOT NULL,
	description TEXT NOT NULL,
	document    TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
);

CREATE TABLE attachments (
	kind       TEXT NOT NULL,
	owner      TEXT NOT NULL COLLATE NOCASE,
	policy_arn TEXT NOT NULL REFERENCES managed_policies (arn),
	PRIMARY KEY (kind, owner, policy_arn)
);

CREATE TABLE group_members (
	group_name TEXT NOT NULL COLLATE NOCASE,
	user_name  TEXT NOT NULL COLLATE NOCASE,
	PRIMARY KEY (group_name, user_name)
);

CREATE TABLE tags (
	kind  TEXT NOT NULL,
	owner TEXT NOT NULL COLLATE NOCASE,
	key   TEXT NOT NULL COLLATE NOCASE,
	value TEXT NOT NULL,
	seq   INTEGER NOT NULL,
	PRIMARY KEY (kind, owner, key)
);

CREATE TABLE sessions (
	access_key_id  TEXT PRIMARY KEY,
	secret         TEXT NOT NULL,
	token          TEXT NOT NULL,
	role_name      TEXT NOT NULL,
	session_name   TEXT NOT NULL,
	source_arn     TEXT NOT NULL,
	session_policy TEXT NOT NULL,
	tags           TEXT NOT NULL, -- JSON [{"Key":…,"Value":…}]
	created_at     INTEGER NOT NULL,
	expires_at     INTEGER NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- Every authorization decision that denied a call, with what decided it, so
-- an administrator can ask why a request id was refused.
CREATE TABLE decisions (
	request_id TEXT NOT NULL,
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	at         INTEGER NOT NULL,
	principal  TEXT NOT NULL,
	action     TEXT NOT NULL,
	resource   TEXT NOT NULL,
	outcome    TEXT NOT NULL,
	explanation TEXT NOT NULL
);
CREATE INDEX decisions_request ON decisions (request_id);
