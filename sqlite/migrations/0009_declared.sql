-- Identities the config file declares (shiftkey serve), by kind and id, so
-- that reconciling at start removes what the file no longer declares and
-- leaves identities created through the IAM API alone. name is the entity's
-- name or, for kind 'policy', the managed policy's ARN.
CREATE TABLE declared_entities (
	kind TEXT NOT NULL,
	id   TEXT NOT NULL,
	name TEXT NOT NULL,
	PRIMARY KEY (kind, id)
);
