-- Who a credential was issued to, beyond principal_arn, as the issue saw
-- them: the principal's aws:userid (AIDA…, or AROA…:<session> for an STS
-- session) and, for a session, its role's ARN (path included) and when
-- the session began. The gateway's audit records name the principal with
-- them as the API's record of the issue does (CloudTrail's userIdentity
-- and sessionContext), and as it was then: a role deleted and created
-- again under its name has another id and maybe another path. Written by
-- the issue's insert, in the same row; a revocation keeps them with the
-- rest (credential_revocations), for the record of a login it refuses.
-- NULL in older rows: unknown, and their records have no sessionContext.
--
-- Additive (migrate.CheckAdditive): the version before it serves, restarts
-- on and is rolled back to a store this one migrated; its rows leave the
-- columns NULL.
-- migrate: additive
ALTER TABLE credentials ADD COLUMN principal_id text;
ALTER TABLE credentials ADD COLUMN role_arn text;
ALTER TABLE credentials ADD COLUMN session_created_at timestamptz;
ALTER TABLE credential_revocations ADD COLUMN principal_id text;
ALTER TABLE credential_revocations ADD COLUMN role_arn text;
ALTER TABLE credential_revocations ADD COLUMN session_created_at timestamptz;
