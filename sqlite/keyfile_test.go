package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/secretbox"
	"github.com/shiftkey/shiftkey/sqlite"
)

// RotateKeyFile reseals under a fresh key that replaces the key file: the
// store opens with the file afterwards (and no longer with the old key),
// secrets read back as issued, and neither .new nor .old is left.
func TestRotateKeyFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "s.db")
	old, keyPath := keyFile(t, dir, "store.key")
	db, err := sqlite.Open(ctx, path, sqlite.WithKey(old, keyPath))
	if err != nil {
		t.Fatal(err)
	}
	secret := shiftkey.NewSecretKey()
	mustUserWithKey(t, db, "AKIAROTATEFILE", secret)
	db.Close()

	n, oldKey, newKey, err := sqlite.RotateKeyFile(ctx, path, keyPath, 1)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || oldKey.ID() != old.ID() || newKey.ID() == old.ID() {
		t.Fatalf("resealed %d, old %s (want %s), new %s", n, oldKey.ID(), old.ID(), newKey.ID())
	}
	for _, left := range []string{keyPath + ".new", keyPath + ".old"} {
		if _, err := os.Stat(left); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", left, err)
		}
	}
	inFile, err := secretbox.LoadKeyFile(keyPath)
	if err != nil || inFile.ID() != newKey.ID() {
		t.Fatalf("key file holds %v, want the new key: %v", inFile, err)
	}
	db, err = sqlite.Open(ctx, path, sqlite.WithKey(inFile, keyPath))
	if err != nil {
		t.Fatal(err)
	}
	k, err := db.AccessKey(ctx, "AKIAROTATEFILE")
	db.Close()
	if err != nil || k.Secret != secret {
		t.Fatalf("secret after rotation: %v", err)
	}
	if db, err := sqlite.Open(ctx, path, sqlite.WithKey(old, "")); err == nil {
		db.Close()
		t.Fatal("the old key still opens the store")
	}
}

// dev's key file deleted between runs: OpenKeyFile (create) is refused
// with an error naming the missing file, and leaves no fresh key there.
func TestOpenKeyFileRefusesAMissingKeyFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path, keyPath := filepath.Join(dir, "s.db"), filepath.Join(dir, "store.key")
	db, err := sqlite.OpenKeyFile(ctx, path, keyPath, true)
	if err != nil {
		t.Fatal(err)
	}
	mustUserWithKey(t, db, "AKIAMISSINGKEYFILE", shiftkey.NewSecretKey())
	db.Close()
	if err := os.Remove(keyPath); err != nil {
		t.Fatal(err)
	}
	if db, err = sqlite.OpenKeyFile(ctx, path, keyPath, true); err == nil {
		db.Close()
		t.Fatal("opened a store whose key file is missing")
	}
	if !strings.Contains(err.Error(), keyPath+" is missing") {
		t.Errorf("error does not say the key file is missing: %v", err)
	}
	if _, serr := os.Lstat(keyPath); !os.IsNotExist(serr) {
		t.Errorf("after the refusal %s exists (%v): a fresh key was left in place of the store's", keyPath, serr)
	}
}
