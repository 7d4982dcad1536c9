package postgres_test

import (
	"context"
	"testing"
)

// Keys stored before 0017 get their user's id when it runs, and a key the
// version before writes on a migrated store (no user_id) is read by its
// user_name: each reads with its user's name and id.
func TestKeysFromBeforeUserIDsReadWithTheirUsersID(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	open(t, url).Close()
	raw := rawConn(t, url)
	// Back to the schema before 0017, with a user and its key in it.
	if _, err := raw.Exec(ctx, `ALTER TABLE access_keys DROP COLUMN user_id;
		DELETE FROM schema_additive_migrations WHERE name = 'migrations/0017_access_key_user_id.sql';
		INSERT INTO entities (kind, name, id, path, arn, created_at) VALUES
			('user', 'old', 'AIDAOLD', '/', 'arn:aws:iam::1:user/old', to_timestamp(1)),
			('user', 'older', 'AIDAOLDER', '/', 'arn:aws:iam::1:user/older', to_timestamp(1));
		INSERT INTO access_keys (id, secret, sealed, user_name, status, created_at)
		VALUES ('AKIAOLD', 's', false, 'OLD', 'Active', to_timestamp(1))`); err != nil {
		t.Fatal(err)
	}
	db := open(t, url)
	var backfilled string
	if err := raw.QueryRow(ctx, `SELECT user_id FROM access_keys WHERE id = 'AKIAOLD'`).Scan(&backfilled); err != nil || backfilled != "AIDAOLD" {
		t.Fatalf("AKIAOLD's user_id after the migration: %q, %v; want AIDAOLD", backfilled, err)
	}
	// As the version before writes a key.
	if _, err := raw.Exec(ctx, `INSERT INTO access_keys (id, secret, sealed, user_name, status, created_at)
		VALUES ('AKIAOLDER', 's', false, 'older', 'Active', to_timestamp(1))`); err != nil {
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
