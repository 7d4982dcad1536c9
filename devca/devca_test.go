package devca

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Server certificates carry the chain up to dev's CA, cover the names
// asked for, and are issued once per set of names.
func TestIssueServerCertificate(t *testing.T) {
	ca, err := LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Issue("db.example.com", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Certificate) != 2 {
		t.Fatalf("chain of %d certificates, want the leaf and the CA", len(c.Certificate))
	}
	for _, name := range []string{"db.example.com", "127.0.0.1"} {
		if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: ca.Pool()}); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if again, _ := ca.Issue("db.example.com", "127.0.0.1"); again != c {
		t.Fatal("the same names were issued a second certificate")
	}
	// The same CA on disk is loaded again, not replaced.
	again, err := LoadOrCreate(filepath.Dir(ca.Path))
	if err != nil || !again.Certificate().Equal(ca.Certificate()) {
		t.Fatalf("reloaded CA differs: %v", err)
	}
}

// Found in a file-handling review: ca.key and ca.crt were written with
// os.WriteFile, so a crash could leave one cut short, and the next dev
// start failed with "the CA certificate or key is not PEM", naming neither
// file nor what to do. A pair that does not load now names both files and
// the command that lets dev start over; a key whose certificate is another
// CA's (the remains of a creation cut short) is refused too, where it was
// loaded and signed certificates no client could verify.
func TestLoadNamesWhatToDeleteWhenThePairIsDamaged(t *testing.T) {
	other, err := LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := os.ReadFile(filepath.Join(filepath.Dir(other.Path), "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	for name, damage := range map[string]func(cert, key string) error{
		"key cut short":  func(_, key string) error { return cut(key) },
		"cert cut short": func(cert, _ string) error { return cut(cert) },
		"empty key":      func(_, key string) error { return os.WriteFile(key, nil, 0o600) },
		"another's key":  func(_, key string) error { return os.WriteFile(key, otherKey, 0o600) },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := LoadOrCreate(dir); err != nil {
				t.Fatal(err)
			}
			cert, key := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
			if err := damage(cert, key); err != nil {
				t.Fatal(err)
			}
			_, err := LoadOrCreate(dir)
			if want := "rm " + cert + " " + key; err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("LoadOrCreate of a damaged pair: %v, want an error saying %q", err, want)
			}
			if err := os.Remove(cert); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(key); err != nil {
				t.Fatal(err)
			}
			if _, err := LoadOrCreate(dir); err != nil {
				t.Fatalf("after deleting both: %v", err)
			}
		})
	}
}

// A creation cut short leaves the key without its certificate (the key is
// written first, each file whole): dev starts over with a new pair. A
// certificate whose key is gone is replaced as well, and the pair made
// matches.
func TestLoadRecoversFromACreationCutShort(t *testing.T) {
	for _, gone := range []string{"ca.crt", "ca.key"} {
		t.Run(gone, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := LoadOrCreate(dir); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(filepath.Join(dir, gone)); err != nil {
				t.Fatal(err)
			}
			ca, err := LoadOrCreate(dir)
			if err != nil {
				t.Fatal(err)
			}
			c, err := ca.Issue("localhost")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Leaf.Verify(x509.VerifyOptions{DNSName: "localhost", Roots: ca.Pool()}); err != nil {
				t.Fatalf("a certificate of the new CA does not verify: %v", err)
			}
			for name, want := range map[string]os.FileMode{"ca.key": 0o600, "ca.crt": 0o644} {
				if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Mode().Perm() != want {
					t.Fatalf("%s: %v %v, want mode %04o", name, fi, err, want)
				}
			}
			assertNoTemporaryFiles(t, dir)
		})
	}
}

// cut truncates path to half its length, as a crash during a write would.
func cut(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return os.Truncate(path, fi.Size()/2)
}

func assertNoTemporaryFiles(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != "ca.crt" && e.Name() != "ca.key" {
			t.Errorf("%s left in %s", e.Name(), dir)
		}
	}
}
