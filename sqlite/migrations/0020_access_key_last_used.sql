-- When, for which service and in which region an access key last signed
-- a request (GetAccessKeyLastUsed), recorded at most once an hour per key.
-- NULL for a key never used since, and in rows a version without it
-- writes.
--
-- Additive (migrate.CheckAdditive): the version before it serves, restarts
-- on and is rolled back to a store this one migrated; its rows leave the
-- columns NULL.
-- migrate: additive
ALTER TABLE access_keys ADD COLUMN last_used_at INTEGER;
ALTER TABLE access_keys ADD COLUMN last_used_service TEXT;
ALTER TABLE access_keys ADD COLUMN last_used_region TEXT;
