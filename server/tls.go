package server

import (
	"crypto/tls"
	"sync/atomic"

	"github.com/shiftkey/shiftkey/config"
)

// ReloadableTLS reads pair (field, for errors) into cur and returns a TLS
// config that serves whatever cur holds at each handshake, so that a
// reload can replace the certificate under running listeners.
func ReloadableTLS(cur *atomic.Pointer[tls.Certificate], pair config.CertPair, field string) (*tls.Config, error) {
	cert, err := pair.Certificate(field)
	if err != nil {
		return nil, err
	}
	cur.Store(cert)
	return &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cur.Load(), nil }}, nil
}
