// Package devca is shiftkey dev's own certificate authority: it generates
// the CA (a certauth.CA, which also signs the backends' client
// certificates) and issues the gateways' server certificates, including
// one per custom domain on demand, so clients can use sslmode=verify-full
// with the CA's certificate, and the API's, so AWS clients verify it with
// AWS_CA_BUNDLE.
package devca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/shiftkey/shiftkey/atomicfile"
	"github.com/shiftkey/shiftkey/certauth"
)

// CA is dev's CA: a certauth.CA (client certificates for the backends)
// that also issues server certificates.
type CA struct {
	*certauth.CA
}

// LoadOrCreate reads the CA from dir, creating it (ca.crt, ca.key) first
// when either file is missing. A pair that does not load (a file cut
// short by a crash of an older version, edited, or another CA's key) is an
// error naming both files and the command that lets dev start over.
func LoadOrCreate(dir string) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	certPath, keyPath := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	certPEM, err1 := os.ReadFile(certPath)
	keyPEM, err2 := os.ReadFile(keyPath)
	if errors.Is(err1, os.ErrNotExist) || errors.Is(err2, os.ErrNotExist) {
		// A certificate without its key signs nothing, and a key without
		// its certificate is a creation cut short: start over.
		if certPEM, keyPEM, err1 = writeNew(certPath, keyPath); err1 != nil {
			return nil, err1
		}
	} else if err1 != nil || err2 != nil {
		return nil, errors.Join(err1, err2)
	}
	ca, err := certauth.Parse(certPEM, keyPEM, certPath) // refuses a key that is not the certificate's
	if err != nil {
		return nil, fmt.Errorf("%s and %s are not a CA and its key (%w); to start over with a new CA (clients must then trust the new ca.crt), run: rm %s %s",
			certPath, keyPath, err, certPath, keyPath)
	}
	return &CA{ca}, nil
}

// writeNew creates a CA and writes it, each file whole (atomicfile): the
// old certificate is removed first, then the key is written, then the
// certificate, so a crash leaves no pair or a key without its
// certificate, both of which LoadOrCreate starts over from, never a new
// key beside the old certificate.
func writeNew(certPath, keyPath string) (certPEM, keyPEM []byte, err error) {
	certPEM, keyPEM, err = create()
	if err != nil {
		return nil, nil, err
	}
	if err := os.Remove(certPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	if err := atomicfile.Write(keyPath, keyPEM, 0o600); err != nil {
		return nil, nil, err
	}
	if err := atomicfile.Write(certPath, certPEM, 0o644); err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

func create() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          certauth.Serial(),
		Subject:               pkix.Name{CommonName: "shiftkey dev CA", Organization: []string{"shiftkey"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), nil
}

// Issue returns a server certificate for the given DNS names and IPs,
// with the chain up to the CA.
func (ca *CA) Issue(names ...string) (*tls.Certificate, error) {
	return ca.Cached(strings.Join(names, ","), func() (*tls.Certificate, error) {
		tmpl := &x509.Certificate{
			Subject:     pkix.Name{CommonName: names[0]},
			NotAfter:    time.Now().AddDate(1, 0, 0),
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
		for _, n := range names {
			if ip := net.ParseIP(n); ip != nil {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			} else {
				tmpl.DNSNames = append(tmpl.DNSNames, n)
			}
		}
		c, err := ca.Sign(tmpl)
		if err != nil {
			return nil, err
		}
		// Servers send the chain up to the CA.
		c.Certificate = append(c.Certificate, ca.Certificate().Raw)
		return c, nil
	})
}

// GetCertificate serves a certificate for the client's server name when
// allowed says shiftkey answers to it (localhost, an associated custom
// domain), else for defaults.
func (ca *CA) GetCertificate(allowed func(name string) bool, defaults ...string) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		name := strings.ToLower(hello.ServerName)
		if name != "" && allowed != nil && allowed(name) {
			return ca.Issue(name)
		}
		return ca.Issue(defaults...)
	}
}

// ServerConfig is a server TLS config (TLS 1.2 or later) whose
// certificates come from GetCertificate(allowed, defaults...).
func (ca *CA) ServerConfig(allowed func(name string) bool, defaults ...string) *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: ca.GetCertificate(allowed, defaults...)}
}

// ServerFiles issues a server certificate for names and returns PEM blocks
// of it, its key and the CA, for a PostgreSQL server's ssl_* files.
func (ca *CA) ServerFiles(names ...string) (cert, key, caPEM []byte, err error) {
	c, err := ca.Issue(names...)
	if err != nil {
		return nil, nil, nil, err
	}
	kb, err := x509.MarshalECPrivateKey(c.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		return nil, nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), ca.CertPEM, nil
}
