package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Write gives the file exactly perm (not the umask's, not the old file's)
// and leaves no temporary file beside it.
func TestWriteReplacesWithPerm(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	if err := os.WriteFile(path, []byte("old, longer content"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	assertFile(t, path, "new", 0o600)
	assertOnly(t, dir, "key")
}

// A symbolic link at the destination is replaced, never written through:
// its target keeps its content.
func TestWriteReplacesALinkNotItsTarget(t *testing.T) {
	dir := t.TempDir()
	victim, path := filepath.Join(dir, "victim"), filepath.Join(dir, "key")
	if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	assertFile(t, victim, "precious", 0o644)
	if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("%s after Write: %v %v, want a regular file", path, fi, err)
	}
	assertFile(t, path, "secret", 0o600)
}

// Create never replaces: an existing file (or link) is fs.ErrExist, left
// as it was, and no temporary file stays behind.
func TestCreateNeverReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	if err := Create(path, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Create(path, []byte("second"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create over a file: %v, want fs.ErrExist", err)
	}
	assertFile(t, path, "first", 0o600)
	assertOnly(t, dir, "key")
}

// A failed write (here: no such directory) leaves nothing.
func TestWriteFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	err := Write(filepath.Join(dir, "missing", "key"), []byte("x"), 0o600)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Write into a missing dir: %v, want fs.ErrNotExist", err)
	}
	assertOnly(t, dir)
}

func assertFile(t *testing.T, path, content string, perm fs.FileMode) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil || string(b) != content {
		t.Fatalf("%s holds %q (%v), want %q", path, b, err, content)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != perm {
		t.Fatalf("%s is mode %04o, want %04o", path, fi.Mode().Perm(), perm)
	}
}

// assertOnly fails if dir holds other names than names (a temporary file
// left behind).
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Fatalf("%s holds %v, want %v", dir, got, names)
	}
}
