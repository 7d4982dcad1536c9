-- The permissions boundary of a user or role (shiftkey.Entity.
-- PermissionsBoundary): the ARN of a managed policy, NULL for none.
--
-- Additive (migrate.CheckAdditive): the version before this one leaves it
-- NULL on what it creates and never reads it. Its DeletePolicy does not
-- know of boundaries and may delete a policy in use as one: the
-- authorizer then denies every call of the entity (a boundary that is
-- gone allows nothing) until its boundary is put or deleted again.
-- migrate: additive
ALTER TABLE entities ADD COLUMN permissions_boundary TEXT;
CREATE INDEX entities_permissions_boundary ON entities (permissions_boundary);
