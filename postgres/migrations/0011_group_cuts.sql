-- Session group memberships a replica revoked because the group turned
-- unsafe while held (pgbackend): the other replicas, told by the change
-- feed, read them and end their sessions of the role, which may have run
-- SET ROLE to the group. Kept a day (RecordGroupCut prunes them).
--
-- Additive (migrate.CheckAdditive): the version before it serves, restarts
-- on and is rolled back to a store this one migrated; it never reads the
-- table.
-- migrate: additive
CREATE TABLE group_cuts (
	id     bigserial PRIMARY KEY,
	scope  text NOT NULL,
	role   text NOT NULL,
	grp    text NOT NULL,
	reason text NOT NULL,
	owner  text NOT NULL,
	at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX group_cuts_scope_role_at ON group_cuts (scope, role, at);
