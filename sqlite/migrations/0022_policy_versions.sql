-- Managed policy versions (CreatePolicyVersion, SetDefaultPolicyVersion,
-- DeletePolicyVersion). managed_policies keeps the default version: its
-- document, its CreateDate (updated_at) and, new, its number
-- (default_version) and the number the next version gets (next_version:
-- a policy never gives one twice). policy_versions holds the other
-- versions, by the policy's id, not its ARN: a policy deleted and created
-- again under its ARN is another policy.
--
-- Additive (migrate.CheckAdditive): a row without the columns (a policy
-- stored before them, or by the version before this one) reads as one
-- version, v1 (default_version NULL), whose next is v2 (next_version
-- NULL); the version before reads and writes the default document as
-- it always did, and versions it leaves behind a policy it deletes are
-- never read again (no policy has that id again).
-- migrate: additive
ALTER TABLE managed_policies ADD COLUMN default_version INTEGER;
ALTER TABLE managed_policies ADD COLUMN next_version INTEGER;
CREATE TABLE policy_versions (
	policy_id  TEXT NOT NULL,
	version    INTEGER NOT NULL,
	document   TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (policy_id, version)
);
