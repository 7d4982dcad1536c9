package main

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// privateFiles are the files of a dev data dir that hold secrets or keys.
var privateFiles = []string{"shiftkey.db", "shiftkey.db-wal", "shiftkey.db-shm", "gateway.key", "store.key", "dev.env", "tls/ca.key"}

// assertPrivateDataDir checks finding 1's modes: the data dir closed to
// others (root's gives the postgres group passage only), the store, its
// WAL and SHM and every key 0600.
func assertPrivateDataDir(t *testing.T, dir string) {
	t.Helper()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := os.FileMode(0o700)
	if os.Geteuid() == 0 {
		want = 0o710
	}
	if fi.Mode().Perm() != want {
		t.Errorf("data dir mode %04o, want %04o", fi.Mode().Perm(), want)
	}
	for _, name := range privateFiles {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", name, fi.Mode().Perm())
		}
	}
}

// assertNoFileOpenToOthers walks dir: with umask 077 no file shiftkey or
// its PostgreSQL writes may be group- or world-accessible, except public
// certificates.
func assertNoFileOpenToOthers(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() || strings.HasSuffix(path, ".crt") {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %04o", path, fi.Mode().Perm())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Finding 1: dev made its data dir 0755 and left shiftkey.db-wal and -shm
// 0644, readable by every local user.
func TestFinding1DevFileModes(t *testing.T) {
	assertPrivateDataDir(t, dev.DataDir)
}

// Finding 1: a store open to group or others stops dev from starting, with
// the file and the chmod that fixes it.
func TestFinding1DevRefusesReadableStore(t *testing.T) {
	dir, err := tempDataDir()
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	store := filepath.Join(dir, "shiftkey.db")
	if err := os.WriteFile(store, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(store, 0o644); err != nil {
		t.Fatal(err)
	}
	d := newTestDev(dir)
	err = d.Start(context.Background())
	d.Close()
	if err == nil || !strings.Contains(err.Error(), "chmod 600 "+store) {
		t.Fatalf("start with a store readable by others: %v, want an error saying chmod 600 %s", err, store)
	}
}
