package secretbox

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpen(t *testing.T) {
	k, text, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if again, err := ParseKey(text); err != nil || again.ID() != k.ID() {
		t.Fatalf("ParseKey of the generated text: %v", err)
	}
	v, err := k.Seal([]byte("wJalrXUtnFEMI"), []byte("row1"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(v, Prefix(k.ID())) || strings.Contains(v, "wJalrXUtnFEMI") {
		t.Fatalf("sealed %q", v)
	}
	if id, _ := KeyID(v); id != k.ID() {
		t.Fatalf("KeyID %q", id)
	}
	if pt, err := k.Open(v, []byte("row1")); err != nil || string(pt) != "wJalrXUtnFEMI" {
		t.Fatalf("Open: %q %v", pt, err)
	}
	if _, err := k.Open(v, []byte("row2")); err == nil {
		t.Fatal("opened with another row's additional data")
	}
	other, _, _ := GenerateKey()
	if _, err := other.Open(v, []byte("row1")); err == nil {
		t.Fatal("opened with another key")
	}
	// Relabelled with another key's id, or altered: refused.
	relabelled := Prefix(other.ID()) + strings.TrimPrefix(v, Prefix(k.ID()))
	if _, err := other.Open(relabelled, []byte("row1")); err == nil {
		t.Fatal("a relabelled value opened")
	}
	b := []byte(v)
	b[len(b)-2] ^= 1
	if _, err := k.Open(string(b), []byte("row1")); err == nil {
		t.Fatal("an altered value opened")
	}
}

func TestParseKeyForms(t *testing.T) {
	raw := make([]byte, KeySize)
	for i := range raw {
		raw[i] = byte(i)
	}
	want, _ := NewKey(raw)
	for _, in := range [][]byte{raw, []byte(base64.StdEncoding.EncodeToString(raw) + "\n"), []byte(base64.RawURLEncoding.EncodeToString(raw))} {
		k, err := ParseKey(in)
		if err != nil || k.ID() != want.ID() {
			t.Fatalf("ParseKey(%q): %v", in, err)
		}
	}
	if _, err := ParseKey([]byte("c2hvcnQ=")); err == nil {
		t.Fatal("a 5-byte key was accepted")
	}
}

func TestKeyFileModes(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "store.key")
	k, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("generated key file mode %04o", fi.Mode().Perm())
	}
	if again, err := LoadOrCreateKeyFile(path); err != nil || again.ID() != k.ID() {
		t.Fatalf("second load: %v", err)
	}
	os.Chmod(path, 0o640)
	_, err = LoadKeyFile(path)
	if err == nil || !strings.Contains(err.Error(), "chmod 600 "+path) {
		t.Fatalf("group-readable key file: %v", err)
	}
}
