-- Credentials revoked by an operator (shiftkey credentials revoke): the
-- credential row goes, this record stays until the credential would have
-- expired, so that gateways can tell whether its sessions are to end too.
CREATE TABLE credential_revocations (
	id            TEXT PRIMARY KEY,
	cluster       TEXT NOT NULL,
	login_name    TEXT NOT NULL,
	principal_arn TEXT NOT NULL,
	expires_at    INTEGER NOT NULL, -- unix milliseconds
	revoked_at    INTEGER NOT NULL, -- unix milliseconds
	terminate     INTEGER NOT NULL
);
CREATE INDEX credential_revocations_expiry ON credential_revocations (expires_at);
CREATE INDEX credentials_principal ON credentials (principal_arn);
