-- Where each replica's gateway of a cluster or workgroup (scope) takes
-- cancel requests forwarded by the others, leased like session grants: a
-- replica that dies stops renewing and drops out of its peers' lists.
CREATE TABLE gateway_peers (
	scope       text NOT NULL,
	owner       text NOT NULL,
	address     text NOT NULL,
	lease_until timestamptz NOT NULL,
	PRIMARY KEY (scope, owner)
);
