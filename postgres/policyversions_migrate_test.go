package postgres_test

import (
	"context"
	"testing"

	"github.com/shiftkey/shiftkey"
)

// A policy stored before versions (a store from before 0015, migrated at
// this start) and one the version before writes on a migrated store (its
// INSERT names the columns it knows) read as one version, v1, their
// document; their next version is v2.
func TestPoliciesFromBeforeVersionsReadAsV1(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	open(t, url).Close()
	raw := rawConn(t, url)
	// Back to the schema before 0015, with a policy in it.
	if _, err := raw.Exec(ctx, `DROP TABLE policy_versions;
		ALTER TABLE managed_policies DROP COLUMN default_version, DROP COLUMN next_version;
		DELETE FROM schema_additive_migrations WHERE name = 'migrations/0015_policy_versions.sql';
		INSERT INTO managed_policies (arn, name, id, path, description, document, created_at, updated_at)
		VALUES ('arn:aws:iam::1:policy/old', 'old', 'ANPAOLD', '/', '', '{"old":1}', to_timestamp(1), to_timestamp(2))`); err != nil {
		t.Fatal(err)
	}
	db := open(t, url)
	if _, err := raw.Exec(ctx, `INSERT INTO managed_policies (arn, name, id, path, description, document, created_at, updated_at)
		VALUES ('arn:aws:iam::1:policy/older', 'older', 'ANPAOLDER', '/', '', '{"older":1}', to_timestamp(1), to_timestamp(2))`); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"old", "older"} {
		arn := "arn:aws:iam::1:policy/" + name
		vs, err := db.PolicyVersions(ctx, arn)
		if err != nil || len(vs) != 1 || vs[0].ID != "v1" || !vs[0].IsDefault || vs[0].Document != `{"`+name+`":1}` || vs[0].CreatedAt.Unix() != 2 {
			t.Fatalf("%s: versions %+v, %v; want v1, default, its document, dated when it was set", name, vs, err)
		}
		m, err := db.ManagedPolicy(ctx, arn)
		if err != nil || m.DefaultVersion != "v1" || m.NewestVersionAt.Unix() != 2 {
			t.Fatalf("%s: %+v, %v; want default v1", name, m, err)
		}
		v := &shiftkey.PolicyVersion{Document: "{}", IsDefault: true, CreatedAt: m.UpdatedAt}
		if err := db.CreatePolicyVersion(ctx, arn, v); err != nil || v.ID != "v2" {
			t.Fatalf("%s: CreatePolicyVersion %q, %v; want v2", name, v.ID, err)
		}
	}
}
