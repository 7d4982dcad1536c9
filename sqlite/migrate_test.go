package sqlite_test

import (
	"context"
	"database/sql"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/shiftkey/shiftkey/migrate"
	"github.com/shiftkey/shiftkey/sqlite"
)

// A store a newer shiftkey migrated (a migration this binary does not
// know) is refused, naming the migration, rather than served with a schema
// this code was not written for.
func TestOpenRefusesAStoreMigratedByANewerVersion(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.ExecContext(ctx, `INSERT INTO schema_migrations (name) VALUES ('migrations/9999_from_the_future.sql')`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	db, err = sqlite.Open(ctx, path)
	if err == nil {
		db.Close()
		t.Fatal("a store migrated by a newer version opened")
	}
	if !strings.Contains(err.Error(), "9999_from_the_future.sql") || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("error %q does not name the unknown migration and say why", err)
	}
}

func openRaw(t *testing.T, path string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw
}

func names(t *testing.T, raw *sql.DB, table string) []string {
	t.Helper()
	rows, err := raw.Query(`SELECT name FROM ` + table + ` ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

func openAndClose(t *testing.T, path string) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
}

// The compatibility rule, as a shiftkey that knows fewer migrations than
// this one meets a store this one migrated: it reads schema_migrations
// (this version's and every earlier one's check) and starts when it knows
// every name there, i.e. when every migration it does not know is
// additive. A migration marked additive must be (migrate.CheckAdditive),
// and today's newest, which only adds nullable columns and an index, is
// marked: the version before it may start again on the file (a rollback).
func TestAnOlderVersionServesAStoreThisOneOnlyAddedTo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	openAndClose(t, path)
	raw := openRaw(t, path)
	required := names(t, raw, "schema_migrations")
	all, err := fs.Glob(os.DirFS("."), "migrations/*.sql")
	if err != nil || len(all) == 0 {
		t.Fatal(all, err)
	}
	additive := map[string]bool{}
	for _, name := range all {
		buf, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if additive[name] = migrate.Additive(string(buf)); additive[name] {
			if err := migrate.CheckAdditive(string(buf)); err != nil {
				t.Errorf("%s is marked additive but is not: %v", name, err)
			}
		}
	}
	if !additive["migrations/0017_issuing_access_keys.sql"] {
		t.Error("0017_issuing_access_keys.sql is not marked additive: the version before it cannot start on a store this one migrated")
	}
	if !additive["migrations/0018_ended_sessions.sql"] {
		t.Error("0018_ended_sessions.sql is not marked additive: the version before it cannot start on a store this one migrated")
	}
	if !additive["migrations/0019_revoked_access_keys.sql"] {
		t.Error("0019_revoked_access_keys.sql is not marked additive: the version before it cannot start on a store this one migrated")
	}
	if !additive["migrations/0021_credential_issued_to.sql"] {
		t.Error("0021_credential_issued_to.sql is not marked additive: the version before it cannot start on a store this one migrated")
	}
	if !additive["migrations/0022_policy_versions.sql"] {
		t.Error("0022_policy_versions.sql is not marked additive: the version before it cannot start on a store this one migrated")
	}
	if !additive["migrations/0024_access_key_user_id.sql"] {
		t.Error("0024_access_key_user_id.sql is not marked additive: the version before it cannot start on a store this one migrated")
	}
	for k := len(all); k > 0; k-- {
		older := fstest.MapFS{}
		for _, name := range all[:k] {
			older[name] = &fstest.MapFile{Data: []byte("-- known")}
		}
		wantOK := true
		for _, name := range all[k:] {
			wantOK = wantOK && additive[name]
		}
		err := migrate.CheckKnown(older, required)
		if wantOK != (err == nil) {
			t.Errorf("a version that knows %s and no later migration: CheckKnown = %v, want ok %v", all[k-1], err, wantOK)
		}
	}
	recorded := names(t, raw, "schema_additive_migrations")
	for _, name := range all {
		if slices.Contains(recorded, name) != additive[name] || slices.Contains(required, name) == additive[name] {
			t.Errorf("%s (additive %v) recorded in schema_migrations %v, in schema_additive_migrations %v", name, additive[name], slices.Contains(required, name), slices.Contains(recorded, name))
		}
	}
}

// A store a newer shiftkey only added to (a migration this binary does not
// know, recorded as additive) opens and serves.
func TestOpenServesAStoreANewerVersionOnlyAddedTo(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	openAndClose(t, path)
	raw := openRaw(t, path)
	if _, err := raw.Exec(`ALTER TABLE credentials ADD COLUMN from_the_future TEXT;
		INSERT INTO schema_additive_migrations (name) VALUES ('migrations/9999_from_the_future.sql')`); err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Clusters(ctx); err != nil {
		t.Fatal(err)
	}
	if got := names(t, raw, "schema_migrations"); slices.Contains(got, "migrations/9999_from_the_future.sql") {
		t.Fatalf("the unknown additive migration was recorded as required: %v", got)
	}
}

// A store that recorded an additive migration as required (the build that
// introduced 0017 did) has it recorded again as additive at the next
// open, so that the version before it opens the file again.
func TestOpenRecordsAgainAsAdditiveAMigrationRecordedAsRequired(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	openAndClose(t, path)
	raw := openRaw(t, path)
	const name = "migrations/0017_issuing_access_keys.sql"
	if _, err := raw.Exec(`DELETE FROM schema_additive_migrations WHERE name = '` + name + `';
		INSERT INTO schema_migrations (name) VALUES ('` + name + `')`); err != nil {
		t.Fatal(err)
	}
	openAndClose(t, path)
	if got := names(t, raw, "schema_migrations"); slices.Contains(got, name) {
		t.Fatalf("schema_migrations still holds %s: %v", name, got)
	}
	if got := names(t, raw, "schema_additive_migrations"); !slices.Contains(got, name) {
		t.Fatalf("schema_additive_migrations lacks %s: %v", name, got)
	}
}
