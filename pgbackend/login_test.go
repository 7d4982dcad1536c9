package pgbackend_test

import (
	"path/filepath"
	"testing"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/devca"
	"github.com/shiftkey/shiftkey/pgbackend"
)

// ConfigFor sets up each login mode from the backend's declaration, and
// refuses a mode whose CA or secret is missing.
func TestConfigForLoginModes(t *testing.T) {
	ca, err := devca.LoadOrCreate(filepath.Join(t.TempDir(), "tls"))
	if err != nil {
		t.Fatal(err)
	}
	secret := []byte("0123456789abcdef-replica-secret")
	logins := pgbackend.Logins{CA: ca, PasswordSecret: secret}

	trust, err := logins.ConfigFor(shiftkey.Backend{Host: "/run/pg", Port: 5432, AdminUser: "admin"}, "dev")
	if err != nil || trust.Host != "/run/pg" || trust.Port != 5432 || trust.AdminUser != "admin" || trust.AdminDatabase != "dev" ||
		trust.ClientCert != nil || trust.PasswordFor != nil {
		t.Fatalf("trust: %+v %v", trust, err)
	}
	cert, err := logins.ConfigFor(shiftkey.Backend{Host: "db.internal", Port: 5432, AdminUser: "admin", Login: shiftkey.BackendLoginCert}, "dev")
	if err != nil || cert.ClientCert == nil || cert.RootCAs == nil || cert.ServerName != "db.internal" || cert.PasswordFor != nil {
		t.Fatalf("cert: %+v %v", cert, err)
	}
	if c, err := cert.ClientCert("alice"); err != nil || c.Leaf.Subject.CommonName != "alice" {
		t.Fatalf("cert login's client certificate: %v", err)
	}
	password, err := logins.ConfigFor(shiftkey.Backend{Host: "db.internal", Port: 5432, AdminUser: "admin", Login: shiftkey.BackendLoginPassword}, "dev")
	if err != nil || password.PasswordFor == nil || password.ClientCert != nil {
		t.Fatalf("password: %+v %v", password, err)
	}
	// A fixed vector: replicas and restarts must agree on the derivation.
	if got := password.PasswordFor("alice"); got != "Z20VmrdjVtwDuH462N5df6mHT-uEWHPgyZFi4oU1VoE" {
		t.Fatalf("alice's gateway-only password %q", got)
	}
	if password.PasswordFor("alice") == password.PasswordFor("bob") {
		t.Fatal("two roles share a gateway-only password")
	}

	for _, b := range []shiftkey.Backend{{Login: shiftkey.BackendLoginCert}, {Login: shiftkey.BackendLoginPassword}} {
		if _, err := (pgbackend.Logins{}).ConfigFor(b, "dev"); err == nil {
			t.Errorf("%s login without its CA or secret was set up", b.Login)
		}
	}
}
