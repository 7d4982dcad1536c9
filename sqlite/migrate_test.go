package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

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
