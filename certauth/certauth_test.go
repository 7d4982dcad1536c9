package certauth_test

import (
	"crypto/x509"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/shiftkey/shiftkey/certauth"
	"github.com/shiftkey/shiftkey/devca"
)

// Finding 7 (issue 13): the certificate cache is bounded (least recently
// used out): after many distinct roles and server names (dev's CA issues
// both through it) it holds at most the bound, and a certificate in steady
// use stays cached throughout.
func TestFinding7CertificateCacheIsBounded(t *testing.T) {
	t.Cleanup(certauth.SetMaxCached(8))
	ca, err := devca.LoadOrCreate(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	hot, err := ca.ClientCert("hot")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if _, err := ca.ClientCert(fmt.Sprintf("role%d", i)); err != nil {
			t.Fatal(err)
		}
		if _, err := ca.Issue(fmt.Sprintf("host%d.example", i)); err != nil {
			t.Fatal(err)
		}
		again, err := ca.ClientCert("hot")
		if err != nil {
			t.Fatal(err)
		}
		if again != hot {
			t.Fatalf("after %d other roles the certificate in use was issued again", i+1)
		}
		if n := ca.CachedCount(); n > 8 {
			t.Fatalf("after %d roles and %d server names, %d certificates cached, want at most 8", i+1, i+1, n)
		}
	}
	if c, err := ca.ClientCert("hot"); err != nil || c.Leaf.Subject.CommonName != "hot" {
		t.Fatalf("client certificate: %v %v", c, err)
	}
}

// Production's backend_auth CA is loaded from its files and signs client
// certificates that verify against it, for client authentication only.
func TestLoadSignsClientCertificates(t *testing.T) {
	dir := t.TempDir()
	if _, err := devca.LoadOrCreate(dir); err != nil { // any CA on disk will do
		t.Fatal(err)
	}
	ca, err := certauth.Load(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.ClientCert("alice")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil || c.Leaf.Subject.CommonName != "alice" {
		t.Fatalf("client certificate CN %q: %v", c.Leaf.Subject.CommonName, err)
	}
	if _, err := c.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err == nil {
		t.Fatal("a client certificate verifies as a server's")
	}
	if _, err := certauth.Load(filepath.Join(dir, "ca.crt"), filepath.Join(dir, "missing.key")); err == nil {
		t.Fatal("a CA without its key loaded")
	}
}
