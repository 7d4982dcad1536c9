-- The unique id (AIDA…) of the user an access key belongs to
-- (shiftkey.AccessKey.UserID): a read of a key resolves its user by it, so
-- that a key of a renamed user is never taken for a user created again
-- under the old name. Existing keys get their user's id here; a key an
-- older version writes leaves it NULL, and is read by its user_name, which
-- every version keeps on renames.
--
-- Additive (migrate.CheckAdditive): the version before this one serves,
-- restarts on and is rolled back to a store this one migrated; it neither
-- reads nor writes the column.
-- migrate: additive
ALTER TABLE access_keys ADD COLUMN user_id TEXT;
CREATE INDEX access_keys_user_id ON access_keys (user_id);
UPDATE access_keys SET user_id = (SELECT id FROM entities WHERE kind = 'user' AND name = access_keys.user_name) WHERE user_id IS NULL;
