-- The unique ids of the users and roles a role's trust policy named when
-- it was saved (shiftkey.Entity.TrustPrincipalIDs): '' for roles from
-- before, whose principals match by name as they did.
ALTER TABLE entities ADD COLUMN trust_principal_ids TEXT NOT NULL DEFAULT '';
