-- Every cluster, namespace and workgroup lives in one AWS region. Rows
-- stored before regions were recorded belong to the default region.
ALTER TABLE clusters ADD COLUMN region TEXT NOT NULL DEFAULT 'us-east-1';
ALTER TABLE namespaces ADD COLUMN region TEXT NOT NULL DEFAULT 'us-east-1';
ALTER TABLE workgroups ADD COLUMN region TEXT NOT NULL DEFAULT 'us-east-1';
