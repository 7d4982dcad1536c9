package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/internal/storetest"
	"github.com/shiftkey/shiftkey/sqlite"
)

// mustOpen opens the store at path or fails the test; the caller closes it.
func mustOpen(t testing.TB, path string, opts ...sqlite.Option) *sqlite.DB {
	t.Helper()
	db, err := sqlite.Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// tempStore is a store in a fresh directory, closed when the test ends.
func tempStore(t testing.TB, opts ...sqlite.Option) *sqlite.DB {
	t.Helper()
	db := mustOpen(t, filepath.Join(t.TempDir(), "s.db"), opts...)
	t.Cleanup(func() { db.Close() })
	return db
}

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) shiftkey.Store { return tempStore(t) })
}

// A credential written before Close is there after reopening the file.
func TestReopenKeepsCredentials(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	db := mustOpen(t, path)
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond).UTC()
	db.LoginSalt(ctx, "c", "IAM:a", "", shiftkey.LoginSalt{Salt: []byte("0123456789abcdef"), Iterations: 4096})
	if err := db.CreateCredential(ctx, &shiftkey.Credential{ID: "x", Cluster: "c", LoginName: "IAM:a", DBUser: "a",
		StoredKey: []byte{1}, ServerKey: []byte{2}, CreatedAt: time.Now(), ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db = mustOpen(t, path) // migrations must be idempotent
	defer db.Close()
	creds, _, ok, err := db.LiveCredentials(ctx, "c", "IAM:a", time.Now())
	if err != nil || !ok || len(creds) != 1 || !creds[0].ExpiresAt.Equal(exp) {
		t.Fatalf("after reopen: %v %v %v", creds, ok, err)
	}
}

// Closing twice (a caller's deferred Close after a shutdown path closed
// it) returns, as database/sql's Close does, instead of panicking on the
// writer's closed channel.
func TestCloseTwice(t *testing.T) {
	d, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
