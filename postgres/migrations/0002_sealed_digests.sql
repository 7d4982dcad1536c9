-- The Redshift verifiers are login-equivalent: whoever reads them can log
-- in by code 13 or MD5 until the credential expires. In a store with a
-- key they are sealed together into digests (secrets.go, sealDigests),
-- bound to the row, and digest_sha256 and digest_md5 stay NULL; digests
-- is NULL where they are in the clear (a store without a key, or a row
-- from before this migration, sealed at the next open with a key).
ALTER TABLE credentials ADD COLUMN digests text;
