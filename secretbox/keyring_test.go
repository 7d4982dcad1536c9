package secretbox

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestPair(t *testing.T) {
	k, _, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keyFor := func(string) (*Key, error) { return k, nil }
	for _, c := range []struct{ a, b []byte }{{[]byte("sha"), []byte("md5")}, {nil, []byte("b")}, {[]byte("a"), nil}, {nil, nil}} {
		v, err := k.SealPair(CredentialDigests, "id1", c.a, c.b)
		if err != nil {
			t.Fatal(err)
		}
		a, b, err := OpenPair(keyFor, CredentialDigests, "id1", v)
		if err != nil || !bytes.Equal(a, c.a) || !bytes.Equal(b, c.b) || (len(c.a) == 0) != (a == nil) {
			t.Fatalf("%q %q: got %q %q %v", c.a, c.b, a, b, err)
		}
		if _, _, err := OpenPair(keyFor, CredentialDigests, "id2", v); err == nil {
			t.Fatal("a pair opened for another row")
		}
	}
	if _, err := k.SealPair(CredentialDigests, "id1", make([]byte, 256), nil); err == nil {
		t.Fatal("a 256-byte first part was sealed")
	}
}

func TestKeyringResolve(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	k, err := CreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var r Keyring
	calls := 0
	fileOf := func(id string) (string, error) { calls++; return path, nil }
	got, err := r.Resolve(k.ID(), fileOf)
	if err != nil || got.ID() != k.ID() {
		t.Fatalf("Resolve from the file: %v %v", got, err)
	}
	if _, err := r.Resolve(k.ID(), fileOf); err != nil || calls != 1 {
		t.Fatalf("a held key was looked up again (%d lookups, %v)", calls, err)
	}
	if _, err := r.Resolve("other", func(string) (string, error) { return "", ErrUnknownKey }); err == nil || !strings.Contains(err.Error(), "does not know") {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := r.Resolve("envkey", func(string) (string, error) { return "", nil }); err == nil || !strings.Contains(err.Error(), "environment") {
		t.Fatalf("key from another process's environment: %v", err)
	}
	if _, err := r.Resolve("wrongid", fileOf); err == nil || !strings.Contains(err.Error(), "now holds key") {
		t.Fatalf("file holding another key: %v", err)
	}
	boom := errors.New("boom")
	if _, err := r.Resolve("x", func(string) (string, error) { return "", boom }); !errors.Is(err, boom) {
		t.Fatalf("lookup error: %v", err)
	}
}

// A read that met a key the store does not record runs once more, and
// only once; any other outcome is the first read's.
func TestRereadAfterRotation(t *testing.T) {
	unknown := unknownKeyErr(t)
	other := errors.New("other")
	dir := t.TempDir()
	var r Keyring
	_, missing := r.Resolve("feedfacefeedface", func(string) (string, error) { return filepath.Join(dir, "gone.key"), nil })
	k, err := CreateKeyFile(filepath.Join(dir, "now.key"))
	if err != nil {
		t.Fatal(err)
	}
	_, replaced := r.Resolve("feedfacefeedface", func(string) (string, error) { return filepath.Join(dir, "now.key"), nil })
	for _, err := range []error{missing, replaced} {
		if !errors.Is(err, ErrKeyNotInFile) {
			t.Fatalf("Resolve's error %v is not ErrKeyNotInFile", err)
		}
	}
	if !strings.Contains(replaced.Error(), "now holds key "+k.ID()) {
		t.Errorf("Resolve's error for a file holding another key: %v", replaced)
	}
	for _, c := range []struct {
		name   string
		first  error
		second error
		reads  int
		want   error
	}{
		{"ok", nil, nil, 1, nil},
		{"other error", other, nil, 1, other},
		{"unknown key, then ok", unknown, nil, 2, nil},
		{"unknown key twice", unknown, unknown, 2, unknown},
		{"key file missing, then ok", missing, nil, 2, nil},
		{"key file holds another key, then ok", replaced, nil, 2, nil},
	} {
		reads := 0
		err := RereadAfterRotation(func() error {
			reads++
			if reads == 1 {
				return c.first
			}
			return c.second
		})
		if reads != c.reads || err != c.want {
			t.Errorf("%s: %d reads, %v; want %d, %v", c.name, reads, err, c.reads, c.want)
		}
	}
}

// unknownKeyErr is the error Resolve returns for a key the store does not record.
func unknownKeyErr(t *testing.T) error {
	t.Helper()
	var r Keyring
	_, err := r.Resolve("feedfacefeedface", func(string) (string, error) { return "", ErrUnknownKey })
	if !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Resolve's error %v does not wrap ErrUnknownKey", err)
	}
	return err
}
