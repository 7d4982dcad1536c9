package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/sqlite"
)

// A policy stored before versions (a store from before 0022, migrated at
// this open) and one the version before writes on a migrated store (its
// INSERT names the columns it knows) read as one version, v1, their
// document; their next version is v2.
func TestPoliciesFromBeforeVersionsReadAsV1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	openAndClose(t, path)
	raw := openRaw(t, path)
	// Back to the schema before 0022, with a policy in it.
	if _, err := raw.Exec(`DROP TABLE policy_versions;
		ALTER TABLE managed_policies DROP COLUMN default_version;
		ALTER TABLE managed_policies DROP COLUMN next_version;
		DELETE FROM schema_additive_migrations WHERE name = 'migrations/0022_policy_versions.sql';
		INSERT INTO managed_policies (arn, name, id, path, description, document, created_at, updated_at)
		VALUES ('arn:aws:iam::1:policy/old', 'old', 'ANPAOLD', '/', '', '{"old":1}', 1000, 2000)`); err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// The version before, writing on the migrated store.
	if _, err := raw.Exec(`INSERT INTO managed_policies (arn, name, id, path, description, document, created_at, updated_at)
		VALUES ('arn:aws:iam::1:policy/older', 'older', 'ANPAOLDER', '/', '', '{"older":1}', 1000, 2000)`); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"old", "older"} {
		arn := "arn:aws:iam::1:policy/" + name
		vs, err := db.PolicyVersions(ctx, arn)
		if err != nil || len(vs) != 1 || vs[0].ID != "v1" || !vs[0].IsDefault || vs[0].Document != `{"`+name+`":1}` || vs[0].CreatedAt.UnixMilli() != 2000 {
			t.Fatalf("%s: versions %+v, %v; want v1, default, its document, dated when it was set", name, vs, err)
		}
		m, err := db.ManagedPolicy(ctx, arn)
		if err != nil || m.DefaultVersion != "v1" || m.NewestVersionAt.UnixMilli() != 2000 {
			t.Fatalf("%s: %+v, %v; want default v1", name, m, err)
		}
		v := &shiftkey.PolicyVersion{Document: "{}", IsDefault: true, CreatedAt: m.UpdatedAt}
		if err := db.CreatePolicyVersion(ctx, arn, v); err != nil || v.ID != "v2" {
			t.Fatalf("%s: CreatePolicyVersion %q, %v; want v2", name, v.ID, err)
		}
	}
}
