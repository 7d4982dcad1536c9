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

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) shiftkey.Store {
		db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}

// A credential written before Close is there after reopening the file.
func TestReopenKeepsCredentials(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "s.db")
	db, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour).Truncate(time.Millisecond).UTC()
	db.LoginSalt(ctx, "c", "IAM:a", shiftkey.LoginSalt{Salt: []byte("0123456789abcdef"), Iterations: 4096})
	if err := db.CreateCredential(ctx, &shiftkey.Credential{ID: "x", Cluster: "c", LoginName: "IAM:a", DBUser: "a",
		StoredKey: []byte{1}, ServerKey: []byte{2}, CreatedAt: time.Now(), ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = sqlite.Open(ctx, path) // migrations must be idempotent
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	creds, _, ok, err := db.LiveCredentials(ctx, "c", "IAM:a", time.Now())
	if err != nil || !ok || len(creds) != 1 || !creds[0].ExpiresAt.Equal(exp) {
		t.Fatalf("after reopen: %v %v %v", creds, ok, err)
	}
}
