package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/shiftkey/shiftkey/sqlite"
)

// Keys stored before 0024 get their user's id when it runs, and a key the
// version before writes on a migrated store (no user_id) is read by its
// user_name: each reads with its user's name and id.
func TestKeysFromBeforeUserIDsReadWithTheirUsersID(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	openAndClose(t, path)
	raw := openRaw(t, path)
	// Back to the schema before 0024, with users and a key in it.
	for _, q := range []string{
		`DROP INDEX access_keys_user_id`,
		`ALTER TABLE access_keys DROP COLUMN user_id`,
		`DELETE FROM schema_additive_migrations WHERE name = 'migrations/0024_access_key_user_id.sql'`,
		`INSERT INTO entities (kind, name, id, path, arn, created_at) VALUES
			('user', 'old', 'AIDAOLD', '/', 'arn:aws:iam::1:user/old', 1),
			('user', 'older', 'AIDAOLDER', '/', 'arn:aws:iam::1:user/older', 1)`,
		`INSERT INTO access_keys (id, secret, sealed, user_name, status, created_at) VALUES ('AKIAOLD', 's', 0, 'OLD', 'Active', 1)`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatal(q, err)
		}
	}
	raw.Close()
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	raw = openRaw(t, path)
	var backfilled string
	if err := raw.QueryRow(`SELECT user_id FROM access_keys WHERE id = 'AKIAOLD'`).Scan(&backfilled); err != nil || backfilled != "AIDAOLD" {
		t.Fatalf("AKIAOLD's user_id after the migration: %q, %v; want AIDAOLD", backfilled, err)
	}
	// As the version before writes a key.
	if _, err := raw.Exec(`INSERT INTO access_keys (id, secret, sealed, user_name, status, created_at) VALUES ('AKIAOLDER', 's', 0, 'older', 'Active', 1)`); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string][2]string{"AKIAOLD": {"old", "AIDAOLD"}, "AKIAOLDER": {"older", "AIDAOLDER"}} {
		k, err := db.AccessKey(ctx, id)
		if err != nil || k.UserName != want[0] || k.UserID != want[1] {
			t.Fatalf("%s: %+v, %v; want user %s (%s)", id, k, err, want[0], want[1])
		}
		keys, err := db.AccessKeys(ctx, want[0])
		if err != nil || len(keys) != 1 || keys[0].ID != id || keys[0].UserID != want[1] {
			t.Fatalf("AccessKeys(%s) = %+v, %v; want %s", want[0], keys, err, id)
		}
	}
}
