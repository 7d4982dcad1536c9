package certauth_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

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

// docs/configuration.md: backend_auth.ca_key_file is the key of the CA the
// backends trust, as the operator has it. OpenSSL 3 writes keys as PKCS #8
// ("PRIVATE KEY"), older ones EC or RSA keys as SEC 1 or PKCS #1, and many
// existing CAs are RSA: each loads and signs client certificates that
// verify against the CA; a key that is not the certificate's is refused.
func TestLoadTakesTheCAKeyFormatsOpenSSLWrites(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8 := func(k any) []byte {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	}
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		signer crypto.Signer
		keyPEM []byte
	}{
		{"EC, SEC 1", ecKey, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})},
		{"EC, PKCS #8 (openssl 3)", ecKey, pkcs8(ecKey)},
		{"RSA, PKCS #1", rsaKey, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})},
		{"RSA, PKCS #8 (openssl 3)", rsaKey, pkcs8(rsaKey)},
	} {
		t.Run(c.name, func(t *testing.T) {
			tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "backend CA"},
				NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
				IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, c.signer.Public(), c.signer)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			certPath, keyPath := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
			if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(keyPath, c.keyPEM, 0o600); err != nil {
				t.Fatal(err)
			}
			ca, err := certauth.Load(certPath, keyPath)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			cert, err := ca.ClientCert("alice")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cert.Leaf.Verify(x509.VerifyOptions{Roots: ca.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
				t.Fatalf("client certificate does not verify: %v", err)
			}
			other := pkcs8(ecKey)
			if c.signer == crypto.Signer(ecKey) {
				other = pkcs8(rsaKey)
			}
			if err := os.WriteFile(keyPath, other, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := certauth.Load(certPath, keyPath); err == nil {
				t.Fatal("a key that is not the CA certificate's loaded")
			}
		})
	}
}
