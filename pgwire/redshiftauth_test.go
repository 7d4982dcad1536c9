package pgwire

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/rslogin"
	"github.com/shiftkey/shiftkey/scram"
)

// rsCreds is a CredentialStore of several credentials per login, live
// until their expiry by the gateway's clock.
type rsCreds struct {
	mu    sync.Mutex
	salt  []byte
	creds []*shiftkey.Credential // oldest first, as the stores return them
}

func (m *rsCreds) LoginSalt(context.Context, string, string, shiftkey.LoginSalt) (shiftkey.LoginSalt, error) {
	return shiftkey.LoginSalt{Salt: m.salt, Iterations: 4096}, nil
}
func (m *rsCreds) CreateCredential(context.Context, *shiftkey.Credential) error { return nil }
func (m *rsCreds) LiveCredentials(_ context.Context, _, login string, now time.Time) ([]*shiftkey.Credential, shiftkey.LoginSalt, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var live []*shiftkey.Credential
	known := false
	for _, c := range m.creds {
		if c.LoginName == login {
			known = true
			if c.ExpiresAt.After(now) {
				live = append(live, c)
			}
		}
	}
	if !known {
		return nil, shiftkey.LoginSalt{}, false, nil
	}
	return live, shiftkey.LoginSalt{Salt: m.salt, Iterations: 4096}, true, nil
}
func (m *rsCreds) DeleteCredentials(context.Context, string, string) error          { return nil }
func (m *rsCreds) DeleteExpiredCredentials(context.Context, time.Time) (int, error) { return 0, nil }

// add issues password to login as the issuer does: SCRAM keys, and the
// two digests computed here from their definitions.
func (m *rsCreds) add(id, login, password string, expires time.Time) {
	k := scram.NewKeys(password, m.salt, 4096)
	d := sha256.Sum256(append([]byte(password), m.salt...))
	h := md5.Sum([]byte(password + login))
	m.mu.Lock()
	defer m.mu.Unlock()
	m.creds = append(m.creds, &shiftkey.Credential{ID: id, LoginName: login, DBUser: "u", StoredKey: k.StoredKey[:], ServerKey: k.ServerKey[:],
		DigestSHA256: d[:], DigestMD5: h[:], ExpiresAt: expires})
}

// rsGateway serves a TLS gateway in front of a fake backend with two live
// credentials of IAM:u ("pw-old", "pw-new") and an expired one ("pw-gone").
func rsGateway(t *testing.T, configure func(*Gateway)) (addr string, client *tls.Config) {
	t.Helper()
	cfg, pool := testTLS(t)
	now := time.Now()
	store := &rsCreds{salt: []byte("salt-of-IAM:u-16")}
	store.add("old", "IAM:u", "pw-old", now.Add(time.Hour))
	store.add("new", "IAM:u", "pw-new", now.Add(2*time.Hour))
	store.add("gone", "IAM:u", "pw-gone", now.Add(-time.Second))
	g := &Gateway{Cluster: "c", DefaultDB: "dev", Backend: &fakeBackend{}, Secret: []byte("s"), Credentials: store, TLS: cfg}
	_, addr = serveGateway(t, g, configure)
	return addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
}

func rsLogin(t *testing.T, addr string, tc *tls.Config, params map[string]string, password string) (*rslogin.Session, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := rslogin.Login(ctx, addr, rslogin.Config{Params: params, Password: password, TLS: tc})
	if err == nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

func serverCode(err error) string {
	var se *rslogin.ServerError
	if errors.As(err, &se) {
		return se.Code
	}
	return ""
}

// A Redshift driver over TLS logs in with code 13 (the default) or MD5,
// with either live credential of its login; a wrong password, an expired
// credential and an unknown login all get 28P01.
func TestRedshiftDriverLogin(t *testing.T) {
	for _, mode := range []string{"", RedshiftAuthSHA256, RedshiftAuthMD5} {
		t.Run("mode="+mode, func(t *testing.T) {
			addr, tc := rsGateway(t, func(g *Gateway) { g.RedshiftAuth = mode })
			want := rslogin.AuthDigest
			if mode == RedshiftAuthMD5 {
				want = rslogin.AuthMD5
			}
			for _, pw := range []string{"pw-old", "pw-new"} {
				s, err := rsLogin(t, addr, tc, rslogin.DriverParams("IAM:u", "dev"), pw)
				if err != nil {
					t.Fatalf("%s: %v", pw, err)
				}
				if !slices.Equal(s.Auth, []int{want, rslogin.AuthOK}) {
					t.Fatalf("%s: authentication codes %v, want %d then 0", pw, s.Auth, want)
				}
				for _, n := range s.Notices {
					if n.Severity == "WARNING" {
						t.Errorf("%s: warning %q for the driver's parameters", pw, n.Message)
					}
				}
				if v := s.Status["server_version"]; !regexp.MustCompile(`^[0-9]+\.[0-9]+$`).MatchString(v) {
					t.Errorf("server_version %q, want MAJOR.MINOR", v)
				}
				if _, ok := s.Status["server_protocol_version"]; ok {
					t.Errorf("server_protocol_version confirmed for a driver asking 2")
				}
			}
			for _, tc2 := range []struct{ user, pw, what string }{
				{"IAM:u", "wrong", "wrong password"},
				{"IAM:u", "pw-gone", "expired credential"},
				{"IAM:nobody", "pw-new", "unknown login"},
			} {
				s, err := rsLogin(t, addr, tc, rslogin.DriverParams(tc2.user, "dev"), tc2.pw)
				if serverCode(err) != codeInvalidPassword {
					t.Fatalf("%s: %v, want 28P01", tc2.what, err)
				}
				if len(s.Auth) != 1 || s.Auth[0] != want {
					t.Fatalf("%s: authentication codes %v, want %d alone", tc2.what, s.Auth, want)
				}
			}
		})
	}
}

// Only Redshift drivers are offered code 13 or MD5, and only over TLS
// unless plaintext is allowed; everyone else gets SCRAM.
func TestRedshiftAuthOfferedOnlyToDrivers(t *testing.T) {
	addr, tc := rsGateway(t, nil)
	for _, tt := range []struct {
		what   string
		params map[string]string
		tls    *tls.Config
	}{
		{"a PostgreSQL client over TLS", map[string]string{"user": "IAM:u", "database": "dev", "application_name": "psql"}, tc},
		{"a client with a driver_ prefix only", map[string]string{"user": "IAM:u", "driver_name": "x", "server_version": "1"}, tc},
		{"the Redshift JDBC driver without TLS", jdbcParams("IAM:u", "dev"), nil},
	} {
		s, err := rsLogin(t, addr, tt.tls, tt.params, "pw-new")
		if !errors.Is(err, rslogin.ErrUnsupported) || len(s.Auth) != 1 || s.Auth[0] != rslogin.AuthSASL {
			t.Errorf("%s: %v, codes %v; want SCRAM (10) offered", tt.what, err, s.Auth)
		}
	}
	// Configured: plaintext too; or off, SCRAM for everyone.
	plain, _ := rsGateway(t, func(g *Gateway) { g.RedshiftAuthPlaintext = true })
	if s, err := rsLogin(t, plain, nil, rslogin.DriverParams("IAM:u", "dev"), "pw-new"); err != nil || s.Auth[0] != rslogin.AuthDigest {
		t.Errorf("plaintext allowed: %v, codes %v; want code 13", err, s.Auth)
	}
	off, tc := rsGateway(t, func(g *Gateway) { g.RedshiftAuth = RedshiftAuthOff })
	if s, err := rsLogin(t, off, tc, jdbcParams("IAM:u", "dev"), "pw-new"); !errors.Is(err, rslogin.ErrUnsupported) || s.Auth[0] != rslogin.AuthSASL {
		t.Errorf("redshift auth off: %v, codes %v; want SCRAM", err, s.Auth)
	}
}

// jdbcParams are a startup packet of the Redshift JDBC driver, whose SCRAM
// (pgJDBC's) works.
func jdbcParams(user, database string) map[string]string {
	return map[string]string{"user": user, "database": database, "client_protocol_version": "2",
		"driver_version": "Amazon Redshift JDBC Driver 2.1.0.30", "os_version": "Linux 6.1.0"}
}

// redshift_connector cannot do SCRAM (scramp refuses the mechanism list it
// splits; reference/redshift-drivers.md), so where the gateway would offer
// it SCRAM, by hand a user tried ssl=False and got only scramp's "The
// mechanism name ” is not supported". The gateway says instead, before
// any password, what the driver needs; the JDBC driver still gets SCRAM.
func TestPythonDriverToldWhatToDoInsteadOfSCRAM(t *testing.T) {
	for _, tt := range []struct {
		what      string
		configure func(*Gateway)
		tls       bool
		want      []string
	}{
		{"without TLS", nil, false, []string{"ssl=True", "gateway.redshift_auth_plaintext"}},
		{"redshift_auth off", func(g *Gateway) { g.RedshiftAuth = RedshiftAuthOff }, true, []string{"gateway.redshift_auth"}},
	} {
		addr, tc := rsGateway(t, tt.configure)
		if !tt.tls {
			tc = nil
		}
		s, err := rsLogin(t, addr, tc, rslogin.DriverParams("IAM:u", "dev"), "pw-new")
		var se *rslogin.ServerError
		if !errors.As(err, &se) || se.Code != codeInvalidAuthorization || len(s.Auth) != 0 {
			t.Fatalf("%s: %v, codes %v; want 28000 before any authentication request", tt.what, err, s.Auth)
		}
		for _, w := range append(tt.want, "redshift_connector", "SCRAM") {
			if !strings.Contains(se.Message, w) {
				t.Errorf("%s: message %q does not name %q", tt.what, se.Message, w)
			}
		}
		if s, err := rsLogin(t, addr, tc, jdbcParams("IAM:u", "dev"), "pw-new"); !errors.Is(err, rslogin.ErrUnsupported) || s.Auth[0] != rslogin.AuthSASL {
			t.Errorf("%s: JDBC driver: %v, codes %v; want SCRAM", tt.what, err, s.Auth)
		}
	}
}

// A driver asking protocol 0 hears it confirmed.
func TestServerProtocolVersionZero(t *testing.T) {
	addr, tc := rsGateway(t, nil)
	p := rslogin.DriverParams("IAM:u", "dev")
	p["client_protocol_version"] = "0"
	s, err := rsLogin(t, addr, tc, p, "pw-new")
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := s.Status["server_protocol_version"]; !ok || v != "0" {
		t.Fatalf("server_protocol_version %q (%v), want 0", v, ok)
	}
}

// A malformed digest response is a protocol violation, not a crash.
func TestParseDigestResponse(t *testing.T) {
	good := append(append([]byte{0, 0, 0, 32}, make([]byte, 32)...), 0, 0, 0, 2, '1', '2')
	if d, n, ok := parseDigestResponse(good); !ok || len(d) != 32 || string(n) != "12" {
		t.Fatalf("good response: %v %q %v", d, n, ok)
	}
	for _, bad := range [][]byte{nil, {0, 0, 0}, good[:35], append(slices.Clone(good), 0), {0xff, 0xff, 0xff, 0xff},
		append(append([]byte{0, 0, 0, 31}, make([]byte, 31)...), 0, 0, 0, 1, '1'), append(slices.Clone(good[:36]), 0, 0, 0, 0)} {
		if _, _, ok := parseDigestResponse(bad); ok {
			t.Errorf("accepted %x", bad)
		}
	}
}
