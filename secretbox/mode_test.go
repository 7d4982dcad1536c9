package secretbox

import (
	"os"
	"path/filepath"
	"strings"
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
	// Its target is not 32 bytes: refused (a gateway key of another
	// length is never replaced), and nothing written through the link.
	if _, err := LoadOrCreateRaw(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("a link to a %d-byte file: %v, want a refusal naming %s", len("someone's private key"), err, path)
	}
	if b, _ := os.ReadFile(victim); string(b) != "someone's private key" {
		t.Fatalf("the file the link pointed at now holds %q", b)
	}

	// A dangling link: the file it names is not created.
	elsewhere := filepath.Join(dir, "created-elsewhere")
	dangling := filepath.Join(dir, "gateway.key")
	if err := os.Symlink(elsewhere, dangling); err != nil {
		t.Fatal(err)
	}
	secret, err := LoadOrCreateRaw(dangling)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(elsewhere); err == nil {
		t.Fatal("the gateway key was written where a dangling link pointed")
	}
	if fi, err := os.Lstat(dangling); err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the gateway key: %v %v, want a regular file of mode 0600", fi, err)
	}
	if again, err := LoadOrCreateRaw(dangling); err != nil || string(again) != string(secret) {
		t.Fatalf("read again: %v, another secret than the one written", err)
	}
}

// A gateway key file of another length than 32 (truncated, a torn copy,
// a bad restore) is refused with its name and left as it is: a fresh
// secret would change the decoy salts of unknown logins (see
// cmd/shiftkey's TestServeRefusesACorruptGatewayKeyFile for the harm).
func TestLoadOrCreateRawRefusesAFileOfAnotherLength(t *testing.T) {
	for _, n := range []int{0, 20, 33, 44} {
		path := filepath.Join(t.TempDir(), "s.db.gateway-key")
		content := []byte(strings.Repeat("k", n))
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadOrCreateRaw(path)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "32") {
			t.Errorf("%d bytes: %v, want a refusal naming %s and the 32 bytes it should hold", n, err, path)
		}
		if b, _ := os.ReadFile(path); string(b) != string(content) {
			t.Errorf("%d bytes: the file now holds %d bytes, want it untouched", n, len(b))
		}
	}
}
