package postgres_test

import (
	"context"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey/migrate"
	"github.com/shiftkey/shiftkey/postgres"
)

// Replicas starting together on an empty store: every one opens, and the
// schema is applied once.
func TestOpenTogetherOnAnEmptyStore(t *testing.T) {
	url := newURL(t)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := postgres.Open(context.Background(), url)
			if err == nil {
				db.Close()
			}
			errs[i] = err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	raw, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close(context.Background())
	var n, distinct int
	if err := raw.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT name) FROM schema_migrations`).Scan(&n, &distinct); err != nil || n != distinct || n == 0 {
		t.Fatalf("schema_migrations: %d rows, %d names (%v)", n, distinct, err)
	}
}

// A store a newer shiftkey migrated (a migration this binary does not
// know) is refused, naming the migration, rather than served with a schema
// this code was not written for.
func TestOpenRefusesAStoreMigratedByANewerVersion(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	open(t, url).Close()
	raw, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close(ctx)
	if _, err := raw.Exec(ctx, `INSERT INTO schema_migrations (name) VALUES ('migrations/9999_from_the_future.sql')`); err != nil {
		t.Fatal(err)
	}
	db, err := postgres.Open(ctx, url)
	if err == nil {
		db.Close()
		t.Fatal("a store migrated by a newer version opened")
	}
	if !strings.Contains(err.Error(), "9999_from_the_future.sql") || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("error %q does not name the unknown migration and say why", err)
	}
}

// rawConn is a plain connection to url, closed when the test ends.
func rawConn(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	raw, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close(context.Background()) })
	return raw
}

func names(t *testing.T, raw *pgx.Conn, table string) []string {
	t.Helper()
	var out []string
	if err := raw.QueryRow(context.Background(), `SELECT coalesce(array_agg(name ORDER BY name), '{}') FROM `+table).Scan(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// The compatibility rule, as a shiftkey that knows fewer migrations than
// this one meets a store this one migrated: it reads schema_migrations
// (this version's and every earlier one's check) and starts when it knows
// every name there, i.e. when every migration it does not know is
// additive. A migration marked additive must be (migrate.CheckAdditive),
// and today's newest, which only adds nullable columns and an index, is
// marked: replicas of the version before it may run, restart and be
// rolled back to while this one serves.
func TestAnOlderVersionServesAStoreThisOneOnlyAddedTo(t *testing.T) {
	url := newURL(t)
	open(t, url).Close()
	raw := rawConn(t, url)
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
	if !additive["migrations/0009_issuing_access_keys.sql"] {
		t.Error("0009_issuing_access_keys.sql is not marked additive: the version before it cannot restart on a store this one migrated")
	}
	if !additive["migrations/0010_ended_sessions.sql"] {
		t.Error("0010_ended_sessions.sql is not marked additive: the version before it cannot restart on a store this one migrated")
	}
	if !additive["migrations/0012_revoked_access_keys.sql"] {
		t.Error("0012_revoked_access_keys.sql is not marked additive: the version before it cannot restart on a store this one migrated")
	}
	if !additive["migrations/0014_credential_issued_to.sql"] {
		t.Error("0014_credential_issued_to.sql is not marked additive: the version before it cannot restart on a store this one migrated")
	}
	if !additive["migrations/0015_policy_versions.sql"] {
		t.Error("0015_policy_versions.sql is not marked additive: the version before it cannot restart on a store this one migrated")
	}
	if !additive["migrations/0017_access_key_user_id.sql"] {
		t.Error("0017_access_key_user_id.sql is not marked additive: the version before it cannot restart on a store this one migrated")
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
	url := newURL(t)
	open(t, url).Close()
	raw := rawConn(t, url)
	if _, err := raw.Exec(ctx, `ALTER TABLE credentials ADD COLUMN from_the_future text;
		INSERT INTO schema_additive_migrations (name) VALUES ('migrations/9999_from_the_future.sql')`); err != nil {
		t.Fatal(err)
	}
	db := open(t, url)
	if _, err := db.Clusters(ctx); err != nil {
		t.Fatal(err)
	}
	if got := names(t, raw, "schema_migrations"); slices.Contains(got, "migrations/9999_from_the_future.sql") {
		t.Fatalf("the unknown additive migration was recorded as required: %v", got)
	}
}

// A store that recorded an additive migration as required (the build that
// introduced 0009 did) has it recorded again as additive at the next
// start, so that the version before it starts on the store again.
func TestOpenRecordsAgainAsAdditiveAMigrationRecordedAsRequired(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	open(t, url).Close()
	raw := rawConn(t, url)
	const name = "migrations/0009_issuing_access_keys.sql"
	if _, err := raw.Exec(ctx, `DELETE FROM schema_additive_migrations WHERE name = '`+name+`';
		INSERT INTO schema_migrations (name) VALUES ('`+name+`')`); err != nil {
		t.Fatal(err)
	}
	open(t, url).Close()
	if got := names(t, raw, "schema_migrations"); slices.Contains(got, name) {
		t.Fatalf("schema_migrations still holds %s: %v", name, got)
	}
	if got := names(t, raw, "schema_additive_migrations"); !slices.Contains(got, name) {
		t.Fatalf("schema_additive_migrations lacks %s: %v", name, got)
	}
}
