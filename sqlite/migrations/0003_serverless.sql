CREATE TABLE namespaces (
	name           TEXT PRIMARY KEY,
	id             TEXT NOT NULL UNIQUE,
	db_name        TEXT NOT NULL,
	admin_username TEXT NOT NULL,
	status         TEXT NOT NULL,
	created_at     INTEGER NOT NULL
);

CREATE TABLE workgroups (
	name            TEXT PRIMARY KEY,
	id              TEXT NOT NULL UNIQUE,
	namespace       TEXT NOT NULL UNIQUE REFERENCES namespaces (name),
	status          TEXT NOT NULL,
	base_capacity   INTEGER NOT NULL,
	endpoint_address TEXT NOT NULL,
	endpoint_port   INTEGER NOT NULL,
	backend_host    TEXT NOT NULL,
	backend_port    INTEGER NOT NULL,
	backend_admin_user TEXT NOT NULL,
	backend_managed INTEGER NOT NULL,
	created_at      INTEGER NOT NULL
);
