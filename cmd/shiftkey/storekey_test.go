package main

import (
	"context"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiftkey/shiftkey/secretbox"
)

// serve's store key: store.secret_key_file, or SHIFTKEY_STORE_KEY, never
// both; with neither, one generated 0600 beside the store.
func TestServeStoreKeySources(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.DiscardHandler)
	c := StoreConfig{SQLite: filepath.Join(dir, "s.db")}
	k, file, err := c.key(true, log)
	if err != nil || file != c.defaultKeyFile() {
		t.Fatalf("generated key: %v %q", err, file)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated key mode %04o", fi.Mode().Perm())
	}
	if again, _, err := c.key(true, log); err != nil || again.ID() != k.ID() {
		t.Fatalf("second start: %v", err)
	}

	raw := make([]byte, secretbox.KeySize)
	raw[0] = 7
	want, _ := secretbox.NewKey(raw)
	t.Setenv(EnvStoreKey, base64.StdEncoding.EncodeToString(raw))
	k, file, err = c.key(true, log)
	if err != nil || file != "" || k.ID() != want.ID() {
		t.Fatalf("key from %s: %v %q", EnvStoreKey, err, file)
	}
	if _, set := os.LookupEnv(EnvStoreKey); set {
		t.Fatalf("%s left in the environment", EnvStoreKey)
	}

	t.Setenv(EnvStoreKey, base64.StdEncoding.EncodeToString(raw))
	c.SecretKeyFile = filepath.Join(dir, "store.key")
	if _, _, err := c.key(true, log); err == nil || !strings.Contains(err.Error(), "both") {
		t.Fatalf("file and environment: %v", err)
	}
	os.Unsetenv(EnvStoreKey)
	if _, _, err := c.key(true, log); err == nil {
		t.Fatal("a missing store.secret_key_file was accepted")
	}
	fk, err := secretbox.CreateKeyFile(c.SecretKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	if k, file, err := c.key(true, log); err != nil || k.ID() != fk.ID() || file != c.SecretKeyFile {
		t.Fatalf("key file: %v", err)
	}
}

// Finding 1, serve: a store readable by others is refused with the chmod
// that fixes it.
func TestFinding1ServeRefusesReadableStore(t *testing.T) {
	dir := t.TempDir()
	c := StoreConfig{SQLite: filepath.Join(dir, "s.db")}
	db, err := openServeStore(context.Background(), c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	os.Chmod(c.SQLite, 0o640)
	if db, err = openServeStore(context.Background(), c, slog.New(slog.DiscardHandler)); err == nil {
		db.Close()
	}
	if err == nil || !strings.Contains(err.Error(), "chmod 600 "+c.SQLite) {
		t.Fatalf("store 0640: %v", err)
	}
}
