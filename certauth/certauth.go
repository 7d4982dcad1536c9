// Package certauth is a certificate authority loaded from PEM files: it
// signs the per-role client certificates a gateway logs in to a backend
// with (pg_hba "cert"), and whatever else its user asks for, keeping what
// it issued in a bounded cache. Production's backend_auth CA and dev's own
// CA (package devca) are both one of these.
package certauth

import (
	"container/list"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"sync"
	"time"
)

// CA signs certificates with a CA's key.
type CA struct {
	cert    *x509.Certificate
	key     crypto.Signer
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
	return Parse(certPEM, keyPEM, certPath)
}

// Parse reads a CA from its PEM certificate and key (EC or RSA; SEC 1,
// PKCS #1 or PKCS #8, as OpenSSL writes them); certPath is where the
// certificate is kept. A key that is not the certificate's is refused: it
// would sign certificates no backend verifies.
func Parse(certPEM, keyPEM []byte, certPath string) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, fmt.Errorf("certauth: the CA certificate or key is not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, err
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM) // parses every format, and checks the key is the certificate's
	if err != nil {
		return nil, fmt.Errorf("certauth: %w", err)
	}
	key, ok := pair.PrivateKey.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("certauth: the CA key (%T) cannot sign", pair.PrivateKey)
	}
	return &CA{cert: cert, key: key, CertPEM: certPEM, Path: certPath}, nil
}

// Serial is a random certificate serial number.
func Serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	return n
}

// Certificate is the CA's own certificate.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// Pool is a certificate pool holding the CA, to verify servers it issued.
func (ca *CA) Pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// ClientCert returns a client certificate whose CN is role, for logging in
// to a backend that trusts this CA (pg_hba "cert").
func (ca *CA) ClientCert(role string) (*tls.Certificate, error) {
	return ca.Cached("client\x00"+role, func() (*tls.Certificate, error) {
		return ca.Sign(&x509.Certificate{
			Subject:     pkix.Name{CommonName: role},
			NotAfter:    time.Now().AddDate(0, 0, 30),
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		})
	})
}

// Cached returns the certificate cached under key while it has more than
// a day left, else the one issue makes, which it caches.
func (ca *CA) Cached(key string, issue func() (*tls.Certificate, error)) (*tls.Certificate, error) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if c, ok := ca.cache.get(key); ok {
		return c, nil
	}
	c, err := issue()
	if err != nil {
		return nil, err
	}
	ca.cache.put(key, c)
	return c, nil
}

// Sign issues tmpl (subject, expiry, usages set) with a fresh P-256 key.
func (ca *CA) Sign(tmpl *x509.Certificate) (*tls.Certificate, error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = Serial()
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
