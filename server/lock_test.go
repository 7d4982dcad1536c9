//go:build unix

package server

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// The lock file sits beside the store, in a directory the operator chose:
// a symbolic link planted at its path is refused, never followed (the pid
// would be written over the file it points at), and a second lock of the
// file is a *LockedError naming this process.
func TestLockFile(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "store.db.lock")
	if err := os.Symlink(victim, link); err != nil {
		t.Fatal(err)
	}
	if f, err := LockFile(link); err == nil {
		f.Close()
		t.Fatal("locked through a symbolic link")
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious" {
		t.Fatalf("the file the link pointed at now holds %q", b)
	}
	path := filepath.Join(dir, "other.db.lock")
	f, err := LockFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("lock file: %v %v, want mode 0600", fi, err)
	}
	_, err = LockFile(path)
	if le, ok := errors.AsType[*LockedError](err); !ok || le.Holder != "process "+itoaPid() {
		t.Fatalf("second lock: %v, want it held by this process", err)
	}
}

func itoaPid() string { return strconv.Itoa(os.Getpid()) }
