package devca

import (
	"crypto/x509"
	"path/filepath"
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
