package postgres_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
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
