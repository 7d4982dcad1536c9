package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Found in a file-handling review: serve refused a store key or a backend
// CA key that group or others may read, but took the private keys of tls
// and api.tls at any mode, at start and on SIGHUP. Certificate, which both
// read them through, now refuses such a key as CheckPrivate does the
// others: the field, the file, its mode and the chmod that fixes it.
func TestCertificateRefusesAKeyOthersCanRead(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no mode bits")
	}
	pair := writePair(t, t.TempDir())
	if _, err := pair.Certificate("api.tls"); err != nil {
		t.Fatalf("a 0600 key: %v", err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o660} {
		if err := os.Chmod(pair.KeyFile, mode); err != nil {
			t.Fatal(err)
		}
		_, err := pair.Certificate("api.tls")
		prefix := fmt.Sprintf("api.tls.key_file: %s is mode %04o", pair.KeyFile, mode)
		if err == nil || !strings.HasPrefix(err.Error(), prefix) || !strings.HasSuffix(err.Error(), "run: chmod 600 "+pair.KeyFile) {
			t.Fatalf("a key of mode %04o: %v, want %q … run: chmod 600 %s", mode, err, prefix, pair.KeyFile)
		}
	}
	// The certificate is public: any mode.
	if err := os.Chmod(pair.KeyFile, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(pair.CertFile, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := pair.Certificate("tls"); err != nil {
		t.Fatalf("a 0644 certificate with a 0600 key: %v", err)
	}
}

// writePair writes a self-signed certificate and its key (0600) to dir.
func writePair(t *testing.T, dir string) CertPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"}, NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := CertPair{CertFile: filepath.Join(dir, "server.crt"), KeyFile: filepath.Join(dir, "server.key")}
	if err := os.WriteFile(p.CertFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.KeyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
