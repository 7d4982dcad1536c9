package server

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiftkey/shiftkey/config"
)

// Finding 1, serve: a store readable by others is refused with the chmod
// that fixes it.
func TestFinding1ServeRefusesReadableStore(t *testing.T) {
	dir := t.TempDir()
	c := config.StoreConfig{SQLite: filepath.Join(dir, "s.db")}
	db, err := OpenStore(context.Background(), c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	os.Chmod(c.SQLite, 0o640)
	if db, err = OpenStore(context.Background(), c, slog.New(slog.DiscardHandler)); err == nil {
		db.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "chmod 600 "+c.SQLite) {
		t.Fatalf("store 0640: %v", err)
	}
}

// The SQLite store's generated key file, deleted between runs: serve is
// refused with an error that names the missing file, and no fresh key is
// left in its place (the operator restores the old one there; a fresh
// one would have to be found and removed first, and its error named the
// file as if it held the wrong key).
func TestServeRefusesAStoreWhoseGeneratedKeyFileIsMissing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	c := config.StoreConfig{SQLite: filepath.Join(dir, "s.db")}
	keyFile := c.DefaultKeyFile()
	db, err := OpenStore(ctx, c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	saved, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	if db, err = OpenStore(ctx, c, slog.New(slog.DiscardHandler)); err == nil {
		db.Close()
		t.Fatal("serve opened a store whose key file is missing")
	}
	if !strings.Contains(err.Error(), keyFile+" is missing") {
		t.Errorf("error does not say the key file is missing: %v", err)
	}
	if _, serr := os.Lstat(keyFile); !os.IsNotExist(serr) {
		t.Errorf("after the refusal %s exists (%v): a fresh key was left in place of the store's", keyFile, serr)
	}
	// Restored, the store opens again.
	if err := os.WriteFile(keyFile, saved, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err = OpenStore(ctx, c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("with the key file restored: %v", err)
	}
	db.Close()
}
