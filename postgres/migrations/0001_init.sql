-- The PostgreSQL store: what the SQLite store keeps (sqlite/migrations),
-- in native types. IAM names are unique per kind regardless of case, as in
-- IAM: a nondeterministic ICU collation compares them case-insensitively
-- in keys, unique indexes and WHERE clauses alike.
CREATE COLLATION IF NOT EXISTS shiftkey_nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false);

CREATE TABLE clusters (
	identifier         text PRIMARY KEY,
	region             text NOT NULL,
	namespace_id       text NOT NULL,
	node_type          text NOT NULL,
	db_name            text NOT NULL,
	master_username    text NOT NULL,
	status             text NOT NULL,
	endpoint_address   text NOT NULL,
	endpoint_port      integer NOT NULL,
	backend_host       text NOT NULL,
	backend_port       integer NOT NULL,
	backend_admin_user text NOT NULL,
	backend_managed    boolean NOT NULL,
	backend_login      text NOT NULL,
	created_at         timestamptz NOT NULL
);

-- One salt per (cluster, login): see shiftkey.LoginSalt.
CREATE TABLE login_salts (
	cluster    text NOT NULL,
	login_name text NOT NULL,
	salt       bytea NOT NULL,
	iterations integer NOT NULL,
	PRIMARY KEY (cluster, login_name)
);

-- Only verifiers of the password: SCRAM keys and the digests of the
-- password exchanges that need them (NULL where not issued).
CREATE TABLE credentials (
	id            text PRIMARY KEY,
	cluster       text NOT NULL,
	login_name    text NOT NULL,
	db_user       text NOT NULL,
	db_name       text NOT NULL,
	db_groups     text[] NOT NULL,
	auto_create   boolean NOT NULL,
	stored_key    bytea NOT NULL,
	server_key    bytea NOT NULL,
	digest_sha256 bytea,
	digest_md5    bytea,
	principal_arn text NOT NULL,
	request_id    text NOT NULL,
	created_at    timestamptz NOT NULL,
	expires_at    timestamptz NOT NULL
);
CREATE INDEX credentials_login ON credentials (cluster, login_name, expires_at);
CREATE INDEX credentials_expiry ON credentials (expires_at);
CREATE INDEX credentials_principal ON credentials (principal_arn);

-- Credentials revoked by an operator (shiftkey credentials revoke): the
-- credential row goes, this record stays, so that gateways on every
-- replica can tell whether its sessions are to end too.
CREATE TABLE credential_revocations (
	id            text PRIMARY KEY,
	cluster       text NOT NULL,
	login_name    text NOT NULL,
	principal_arn text NOT NULL,
	expires_at    timestamptz NOT NULL,
	revoked_at    timestamptz NOT NULL,
	terminate     boolean NOT NULL
);
CREATE INDEX credential_revocations_expiry ON credential_revocations (expires_at);

CREATE TABLE entities (
	kind                 text NOT NULL,
	name                 text COLLATE shiftkey_nocase NOT NULL,
	id                   text NOT NULL UNIQUE,
	path                 text NOT NULL,
	arn                  text NOT NULL,
	created_at           timestamptz NOT NULL,
	assume_role_policy   text NOT NULL DEFAULT '',
	description          text NOT NULL DEFAULT '',
	max_session_duration integer NOT NULL DEFAULT 0,
	PRIMARY KEY (kind, name)
);

-- secret: a secretbox value (sealed) or, in a store opened without a key,
-- the secret itself.
CREATE TABLE access_keys (
	id         text PRIMARY KEY,
	secret     text NOT NULL,
	sealed     boolean NOT NULL,
	user_name  text COLLATE shiftkey_nocase NOT NULL,
	status     text NOT NULL,
	created_at timestamptz NOT NULL
);
CREATE INDEX access_keys_user ON access_keys (user_name);

CREATE TABLE inline_policies (
	kind     text NOT NULL,
	owner    text COLLATE shiftkey_nocase NOT NULL,
	name     text COLLATE shiftkey_nocase NOT NULL,
	document text NOT NULL,
	PRIMARY KEY (kind, owner, name)
);

CREATE TABLE managed_policies (
	arn         text PRIMARY KEY,
	name        text COLLATE shiftkey_nocase NOT NULL UNIQUE,
	id          text NOT NULL UNIQUE,
	path        text NOT NULL,
	description text NOT NULL,
	document    text NOT NULL,
	created_at  timestamptz NOT NULL,
	updated_at  timestamptz NOT NULL
);

CREATE TABLE attachments (
	kind       text NOT NULL,
	owner      text COLLATE shiftkey_nocase NOT NULL,
	policy_arn text NOT NULL REFERENCES managed_policies (arn),
	PRIMARY KEY (kind, owner, policy_arn)
);

CREATE TABLE group_members (
	group_name text COLLATE shiftkey_nocase NOT NULL,
	user_name  text COLLATE shiftkey_nocase NOT NULL,
	PRIMARY KEY (group_name, user_name)
);

CREATE TABLE tags (
	kind  text NOT NULL,
	owner text COLLATE shiftkey_nocase NOT NULL,
	key   text COLLATE shiftkey_nocase NOT NULL,
	value text NOT NULL,
	seq   bigint GENERATED ALWAYS AS IDENTITY,
	PRIMARY KEY (kind, owner, key)
);

-- Of a session token only its SHA-256 is kept.
CREATE TABLE sessions (
	access_key_id  text PRIMARY KEY,
	secret         text NOT NULL,
	sealed         boolean NOT NULL,
	token_sha256   bytea NOT NULL,
	role_name      text NOT NULL,
	session_name   text NOT NULL,
	source_arn     text NOT NULL,
	session_policy text NOT NULL,
	tags           jsonb NOT NULL,
	created_at     timestamptz NOT NULL,
	expires_at     timestamptz NOT NULL
);
CREATE INDEX sessions_expiry ON sessions (expires_at);
CREATE INDEX sessions_source ON sessions (source_arn);

CREATE TABLE decisions (
	seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	request_id  text NOT NULL,
	at          timestamptz NOT NULL,
	principal   text NOT NULL,
	action      text NOT NULL,
	resource    text NOT NULL,
	outcome     text NOT NULL,
	explanation text NOT NULL
);
CREATE INDEX decisions_request ON decisions (request_id);

CREATE TABLE namespaces (
	name           text PRIMARY KEY,
	region         text NOT NULL,
	id             text NOT NULL UNIQUE,
	db_name        text NOT NULL,
	admin_username text NOT NULL,
	status         text NOT NULL,
	created_at     timestamptz NOT NULL
);

CREATE TABLE workgroups (
	name               text PRIMARY KEY,
	region             text NOT NULL,
	id                 text NOT NULL UNIQUE,
	namespace          text NOT NULL UNIQUE REFERENCES namespaces (name),
	status             text NOT NULL,
	base_capacity      integer NOT NULL,
	endpoint_address   text NOT NULL,
	endpoint_port      integer NOT NULL,
	backend_host       text NOT NULL,
	backend_port       integer NOT NULL,
	backend_admin_user text NOT NULL,
	backend_managed    boolean NOT NULL,
	backend_login      text NOT NULL,
	created_at         timestamptz NOT NULL
);

CREATE TABLE custom_domains (
	name        text COLLATE shiftkey_nocase PRIMARY KEY,
	cert_arn    text NOT NULL,
	kind        text NOT NULL,
	target      text NOT NULL,
	cert_expiry timestamptz NOT NULL
);

-- A session grant is owned by the replica that made it (owner: its
-- process id) and leased: the owner renews lease_until while it holds the
-- grant; once the lease has run out any replica may revoke it.
CREATE TABLE session_grants (
	scope       text NOT NULL,
	role        text NOT NULL,
	grp         text NOT NULL,
	owner       text NOT NULL,
	lease_until timestamptz NOT NULL,
	PRIMARY KEY (scope, role, grp, owner)
);
CREATE INDEX session_grants_owner ON session_grants (owner);

CREATE TABLE secret_keys (
	id    text PRIMARY KEY,
	file  text NOT NULL,
	state text NOT NULL CHECK (state IN ('current', 'retiring'))
);
CREATE UNIQUE INDEX secret_keys_one_current ON secret_keys (state) WHERE state = 'current';

CREATE TABLE declared_entities (
	kind text NOT NULL,
	id   text NOT NULL,
	name text NOT NULL,
	PRIMARY KEY (kind, id)
);

-- Secrets every replica must share, sealed like access keys (the gateway's
-- decoy-salt secret: an unknown login must get the same decoy salt from
-- every replica, or a client could tell it is unknown).
CREATE TABLE shared_secrets (
	name   text PRIMARY KEY,
	value  text NOT NULL,
	sealed boolean NOT NULL
);
