-- A revoked credential's SCRAM keys and role, kept with its revocation
-- until it would have expired: a login that proves one is refused as
-- revoked and audited with its credential, not as an unknown login.
-- Revocations from before have none and are never matched.
ALTER TABLE credential_revocations ADD COLUMN stored_key bytea NOT NULL DEFAULT '';
ALTER TABLE credential_revocations ADD COLUMN server_key bytea NOT NULL DEFAULT '';
ALTER TABLE credential_revocations ADD COLUMN db_user text NOT NULL DEFAULT '';
CREATE INDEX credential_revocations_login ON credential_revocations (cluster, login_name);
