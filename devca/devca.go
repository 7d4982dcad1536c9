// Package devca is shiftkey dev's own certificate authority: it issues the
// gateways' server certificates, including one per custom domain on demand,
// so clients can use sslmode=verify-full with the CA's certificate, and the
// API's, so AWS clients verify it with AWS_CA_BUNDLE.
package devca

import (
	"container/list"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// CA signs server certificates.
type CA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	CertPEM []byte
	Path    string // file of the CA certificate (PGSSLROOTCERT)

	mu    sync.Mutex
	cache certCache
}

// Load reads a CA from PEM files (an existing CA the backends trust).
func Load(certPath, keyPath string) (*CA, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, err
	}
	return parse(certPEM, keyPEM, certPath)
}

// LoadOrCreate reads the CA from dir, creating it (ca.crt, ca.key) first.
func LoadOrCreate(dir string) (*CA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	certPath, keyPath := filepath.Join(dir, "ca.crt"), filepath.Join(dir, "ca.key")
	certPEM, err1 := os.ReadFile(certPath)
	keyPEM, err2 := os.ReadFile(keyPath)
	if errors.Is(err1, os.ErrNotExist) || errors.Is(err2, os.ErrNotExist) {
		certPEM, keyPEM, err1 = create()
		if err1 != nil {
			return nil, err1
		}
		if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
			return nil, err
		}
		if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
			return nil, err
		}
	} else if err1 != nil || err2 != nil {
		return nil, errors.Join(err1, err2)
	}
	return parse(certPEM, keyPEM, certPath)
}

func parse(certPEM, keyPEM []byte, certPath string) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("devca: the CA certificate or key is not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, err
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, err
	}
	return &CA{cert: cert, key: key, CertPEM: certPEM, Path: certPath}, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

func create() (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
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

// Issue returns a server certificate for the given DNS names and IPs.
func (ca *CA) Issue(names ...string) (*tls.Certificate, error) {
	key := strings.Join(names, ",")
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if c, ok := ca.cache.get(key); ok {
		return c, nil
	}
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
	c, err := ca.sign(tmpl)
	if err != nil {
		return nil, err
	}
	// Servers send the chain up to the CA.
	c.Certificate = append(c.Certificate, ca.cert.Raw)
	ca.cache.put(key, c)
	return c, nil
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

// ClientCert returns a client certificate whose CN is role, for logging in
// to a backend that trusts this CA (pg_hba "cert").
func (ca *CA) ClientCert(role string) (*tls.Certificate, error) {
	key := "client\x00" + role
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if c, ok := ca.cache.get(key); ok {
		return c, nil
	}
	c, err := ca.sign(&x509.Certificate{
		Subject:     pkix.Name{CommonName: role},
		NotAfter:    time.Now().AddDate(0, 0, 30),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, err
	}
	ca.cache.put(key, c)
	return c, nil
}

// sign issues tmpl (subject, expiry, usages set) with a fresh P-256 key.
func (ca *CA) sign(tmpl *x509.Certificate) (*tls.Certificate, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial()
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &priv.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: leaf}, nil
}

// Pool is a certificate pool holding the CA, to verify servers it issued.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
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

// maxCached bounds the certificates a CA keeps (client certificates per
// role, server certificates per name): the least recently used go first.
// A certificate dropped is only issued again when next asked for; sessions
// holding it are not affected. A variable for tests.
var maxCached = 1024

// certCache is a least-recently-used cache of issued certificates.
type certCache struct {
	byKey map[string]*list.Element // of *cacheEntry
	order list.List                // most recently used first
}

type cacheEntry struct {
	key  string
	cert *tls.Certificate
}

// get returns key's certificate if it has more than a day left.
func (c *certCache) get(key string) (*tls.Certificate, bool) {
	e, ok := c.byKey[key]
	if !ok {
		return nil, false
	}
	cert := e.Value.(*cacheEntry).cert
	if time.Until(cert.Leaf.NotAfter) <= 24*time.Hour {
		return nil, false
	}
	c.order.MoveToFront(e)
	return cert, true
}

func (c *certCache) put(key string, cert *tls.Certificate) {
	if c.byKey == nil {
		c.byKey = map[string]*list.Element{}
	}
	if e, ok := c.byKey[key]; ok {
		e.Value.(*cacheEntry).cert = cert
		c.order.MoveToFront(e)
		return
	}
	c.byKey[key] = c.order.PushFront(&cacheEntry{key: key, cert: cert})
	for c.order.Len() > maxCached {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.byKey, last.Value.(*cacheEntry).key)
	}
}

func (ca *CA) cached() int {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	return ca.cache.order.Len()
}
