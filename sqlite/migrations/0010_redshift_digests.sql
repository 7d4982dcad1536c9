-- Verifiers for the password exchanges of AWS's Redshift drivers (issue
-- 15), kept like stored_key and server_key: digest_sha256 is
-- SHA256(password || login salt) for Redshift's extensible digest (code
-- 13), digest_md5 is md5(password || login name) for PostgreSQL's MD5
-- exchange. NULL for credentials issued before: those log in with SCRAM only.
ALTER TABLE credentials ADD COLUMN digest_sha256 BLOB;
ALTER TABLE credentials ADD COLUMN digest_md5 BLOB;
