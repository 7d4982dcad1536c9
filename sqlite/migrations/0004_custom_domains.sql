CREATE TABLE custom_domains (
	name        TEXT PRIMARY KEY COLLATE NOCASE,
	cert_arn    TEXT NOT NULL,
	kind        TEXT NOT NULL,
	target      TEXT NOT NULL,
	cert_expiry INTEGER NOT NULL
);
