package pgbackend

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"

	"github.com/shiftkey/shiftkey"
)

// Signer is the CA of the cert login mode: it signs the per-role client
// certificates and verifies the backends' server certificates.
type Signer interface {
	ClientCert(role string) (*tls.Certificate, error)
	Pool() *x509.CertPool
}

// Logins is what the login modes other than trust need: the CA for cert,
// the secret the gateway-only passwords derive from for password.
type Logins struct {
	CA             Signer // nil: no cert login
	PasswordSecret []byte // empty: no password login
}

// ConfigFor is the config of backend b, administered in database db, set
// up for b's login mode; the caller adds the rest (logger, grants, scope,
// master user).
func (l Logins) ConfigFor(b shiftkey.Backend, db string) (Config, error) {
	cfg := Config{Host: b.Host, Port: b.Port, AdminUser: b.AdminUser, AdminDatabase: db}
	switch b.Login {
	case shiftkey.BackendLoginCert:
		if l.CA == nil {
			return cfg, errors.New("certificate login needs the gateway's CA")
		}
		cfg.ClientCert, cfg.RootCAs, cfg.ServerName = l.CA.ClientCert, l.CA.Pool, b.Host
	case shiftkey.BackendLoginPassword:
		if len(l.PasswordSecret) == 0 {
			return cfg, errors.New("password login needs backend_auth.password_secret")
		}
		secret := l.PasswordSecret
		cfg.PasswordFor = func(role string) string { return GatewayPassword(secret, role) }
	}
	return cfg, nil
}

// GatewayPassword is role's gateway-only password: HMAC-SHA256 of the role
// under secret, so every replica given the same secret derives the same.
func GatewayPassword(secret []byte, role string) string {
	m := hmac.New(sha256.New, secret)
	io.WriteString(m, role)
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
