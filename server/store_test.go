package server

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shiftkey/shiftkey/config"
	"github.com/shiftkey/shiftkey/secretbox"
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
	if fi, err := os.Stat(keyFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated key file: %v, %v; want mode 0600", fi.Mode(), err)
	}
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

// The generated key file truncated or replaced by another key between
// runs: serve is refused naming the file, and the file is left as it was.
func TestServeRefusesATruncatedOrReplacedGeneratedKeyFile(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name    string
		replace func(path string) error
		want    string
	}{
		{"truncated", func(p string) error { return os.Truncate(p, 0) }, "32 bytes"},
		{"half", func(p string) error { return os.Truncate(p, 22) }, "32 bytes"},
		{"replaced", func(p string) error {
			os.Remove(p)
			_, err := secretbox.CreateKeyFile(p)
			return err
		}, "sealed under store key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			s := config.StoreConfig{SQLite: filepath.Join(dir, "s.db")}
			keyFile := s.DefaultKeyFile()
			db, err := OpenStore(ctx, s, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			db.Close()
			if err := c.replace(keyFile); err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(keyFile)
			if db, err = OpenStore(ctx, s, slog.New(slog.DiscardHandler)); err == nil {
				db.Close()
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), keyFile) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q; want it to name %s and say %q", err, keyFile, c.want)
			}
			if after, _ := os.ReadFile(keyFile); string(after) != string(before) {
				t.Errorf("the key file changed")
			}
			t.Log(err)
		})
	}
}
