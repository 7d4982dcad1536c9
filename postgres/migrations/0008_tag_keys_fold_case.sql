-- Tag keys are one key when they differ only in the case of ASCII letters,
-- as in the SQLite store (NOCASE) and as the authorizer sees them
-- (aws:TagKeys names the keys of the request). The ICU collation of 0001
-- (level 2) also ignored width, compatibility forms and ignorable
-- characters, so UntagUser "ｑｕａｒａｎｔｉｎｅｄ" or "quarantin<U+00AD>ed"
-- removed "quarantined" past a Deny on that key, and TagUser "ｔｅａｍ"
-- replaced "team". Keys are now bytes, unique by lower() under "C", which
-- folds ASCII letters only. No two stored keys collide: the old key was
-- stricter.
ALTER TABLE tags DROP CONSTRAINT tags_pkey;
ALTER TABLE tags ALTER COLUMN key TYPE text COLLATE "C";
CREATE UNIQUE INDEX tags_key ON tags (kind, owner, lower(key));
