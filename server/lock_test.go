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

// Found in a file-handling review: serve locked cfg.Store.SQLite+".lock"
// as written, so a second serve given a symbolic link to the store (or a
// path through a linked directory) locked another file and ran on the
// same store. Every path to one store now names one lock: the lock sits
// beside the file the path really names, existing or about to be created.
func TestStoreLockPathIsOnePerStore(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	realDir := filepath.Join(dir, "real")
	if err := os.MkdirAll(filepath.Join(realDir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(realDir, "store.db")
	if err := os.WriteFile(store, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, l := range [][2]string{{store, "link.db"}, {realDir, "dirlink"}, {filepath.Join(realDir, "sub"), "sublink"}, {"real/new.db", "dangling.db"}} {
		if err := os.Symlink(l[0], filepath.Join(dir, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	for path, want := range map[string]string{
		store:                                  store + ".lock",
		filepath.Join(dir, "link.db"):          store + ".lock",
		filepath.Join(dir, "dirlink/store.db"): store + ".lock",
		dir + "/real/sub/../store.db":          store + ".lock",
		dir + "/sublink/../store.db":           store + ".lock", // .. of the link's target, as the kernel resolves it
		filepath.Join(dir, "dirlink/new.db"):   filepath.Join(realDir, "new.db.lock"),
		filepath.Join(dir, "dangling.db"):      filepath.Join(realDir, "new.db.lock"),
	} {
		got, err := StoreLockPath(path)
		if err != nil || got != want {
			t.Errorf("StoreLockPath(%s) = %q, %v; want %q", path, got, err, want)
		}
	}
	first, err := StoreLockPath(store)
	if err != nil {
		t.Fatal(err)
	}
	f, err := LockFile(first)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	second, err := StoreLockPath(filepath.Join(dir, "link.db"))
	if err != nil {
		t.Fatal(err)
	}
	if g, err := LockFile(second); err == nil {
		g.Close()
		t.Fatal("the store was locked twice, through a link to it")
	}
}
