CREATE TABLE session_grants (
	scope TEXT NOT NULL,
	role  TEXT NOT NULL,
	grp   TEXT NOT NULL,
	PRIMARY KEY (scope, role, grp)
);
