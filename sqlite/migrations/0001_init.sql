CREATE TABLE clusters (
	identifier      TEXT PRIMARY KEY,
	namespace_id    TEXT NOT NULL,
	node_type       TEXT NOT NULL,
	db_name         TEXT NOT NULL,
	master_username TEXT NOT NULL,
	status          TEXT NOT NULL,
	endpoint_address TEXT NOT NULL,
	endpoint_port   INTEGER NOT NULL,
	backend_host    TEXT NOT NULL,
	backend_port    INTEGER NOT NULL,
	backend_admin_user TEXT NOT NULL,
	backend_managed INTEGER NOT NULL,
	created_at      INTEGER NOT NULL
);

-- One salt per (cluster, login): see shiftkey.LoginSalt.
CREATE TABLE login_salts (
	cluster    TEXT NOT NULL,
	login_name TEXT NOT NULL,
	salt       BLOB NOT NULL,
	iterations INTEGER NOT NULL,
	PRIMARY KEY (cluster, login_name)
);

CREATE TABLE credentials (
	id            TEXT PRIMARY KEY,
	cluster       TEXT NOT NULL,
	login_name    TEXT NOT NULL,
	db_user       TEXT NOT NULL,
	db_name       TEXT NOT NULL,
	db_groups     TEXT NOT NULL, -- JSON array
	auto_create   INTEGER NOT NULL,
	stored_key    BLOB NOT NULL,
	server_key    BLOB NOT NULL,
	principal_arn TEXT NOT NULL,
	request_id    TEXT NOT NULL,
	created_at    INTEGER NOT NULL, -- unix milliseconds
	expires_at    INTEGER NOT NULL  -- unix milliseconds
);
CREATE INDEX credentials_login ON credentials (cluster, login_name, expires_at);
CREATE INDEX credentials_expiry ON credentials (expires_at);

CREATE TABLE users (
	name       TEXT PRIMARY KEY,
	id         TEXT NOT NULL UNIQUE,
	path       TEXT NOT NULL,
	arn        TEXT NOT NULL,
	created_at INTEGER NOT NULL
);

CREATE TABLE access_keys (
	id         TEXT PRIMARY KEY,
	secret     TEXT NOT NULL,
	user_name  TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	status     TEXT NOT NULL,
	created_at INTEGER NOT NULL
);

CREATE TABLE user_policies (
	user_name TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	name      TEXT NOT NULL,
	document  TEXT NOT NULL,
	PRIMARY KEY (user_name, name)
);
