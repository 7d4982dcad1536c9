package secretbox

import (
	"os"
	"path/filepath"
	"testing"
)

// Found in an operator-surface review: the gateway key (serve's
// <store>.gateway-key, dev's gateway.key) was written with os.WriteFile,
// which follows a symbolic link at the path and truncates its target. A
// link planted there (the store in a directory others can write) made
// shiftkey overwrite whatever private file it pointed at (an ssh key), or
// create the file the link named. The key is now written under a fresh
// name and renamed into place, which replaces the link, never its target.
func TestLoadOrCreateRawDoesNotWriteThroughALink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(victim, []byte("someone's private key"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "shiftkey.db.gateway-key")
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	secret, err := LoadOrCreateRaw(path)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "someone's private key" {
		t.Fatalf("the file the link pointed at now holds %q", b)
	}
	if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the gateway key: %v %v, want a regular file of mode 0600", fi, err)
	}
	if again, err := LoadOrCreateRaw(path); err != nil || string(again) != string(secret) {
		t.Fatalf("read again: %v, another secret than the one written", err)
	}

	// A dangling link: the file it names is not created.
	elsewhere := filepath.Join(dir, "created-elsewhere")
	dangling := filepath.Join(dir, "gateway.key")
	if err := os.Symlink(elsewhere, dangling); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateRaw(dangling); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(elsewhere); err == nil {
		t.Fatal("the gateway key was written where a dangling link pointed")
	}
}
