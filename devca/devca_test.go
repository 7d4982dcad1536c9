package devca

import (
	"fmt"
	"testing"
)

// Finding 7: the certificate cache is bounded (least recently used out):
// after many distinct roles it holds at most the bound, and a certificate
// in steady use stays cached throughout.
func TestFinding7CertificateCacheIsBounded(t *testing.T) {
	old := maxCached
	maxCached = 8
	t.Cleanup(func() { maxCached = old })
	ca, err := LoadOrCreate(t.TempDir())
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
		if n := ca.cached(); n > maxCached {
			t.Fatalf("after %d roles and %d server names, %d certificates cached, want at most %d", i+1, i+1, n, maxCached)
		}
	}
	if c, err := ca.ClientCert("hot"); err != nil || c.Leaf.Subject.CommonName != "hot" {
		t.Fatalf("client certificate: %v %v", c, err)
	}
}
