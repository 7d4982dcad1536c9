-- A revoked credential's Redshift verifiers, kept with its revocation as
-- its SCRAM keys are (0015): a Redshift driver's login (code 13 or MD5)
-- that proves one is refused as revoked and audited with its credential.
-- Sealed and resealed as the credentials' columns (0012): digests under
-- the store key, or digest_sha256 and digest_md5 in a store without one.
ALTER TABLE credential_revocations ADD COLUMN digest_sha256 BLOB;
ALTER TABLE credential_revocations ADD COLUMN digest_md5 BLOB;
ALTER TABLE credential_revocations ADD COLUMN digests TEXT;
