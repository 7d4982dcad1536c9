-- A session is its role's, bound by the role's unique id: a role deleted
-- and created again under its name is another role, whose permissions an
-- old session must not get. Sessions from before are bound to the role of
-- their name now; those of a role that is gone match none.
ALTER TABLE sessions ADD COLUMN role_id text NOT NULL DEFAULT '';
UPDATE sessions SET role_id = COALESCE((SELECT id FROM entities WHERE kind = 'role' AND name = sessions.role_name), '');
