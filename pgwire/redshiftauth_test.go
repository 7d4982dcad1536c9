package pgwire

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"maps"
	"net"
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
	// hidden are missing from LiveCredentials' answers and found by
	// MissedCredentials, as one another replica just issued.
	hidden map[string]bool
}

func (m *rsCreds) LoginSalt(context.Context, string, string, string, shiftkey.LoginSalt) (shiftkey.LoginSalt, error) {
	return shiftkey.LoginSalt{Salt: m.salt, Iterations: 4096}, nil
}
func (m *rsCreds) CreateCredential(context.Context, *shiftkey.Credential) error { return nil }
func (m *rsCreds) MissedCredentials(_ context.Context, _, login string, _ []*shiftkey.Credential, now time.Time) ([]*shiftkey.Credential, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var missed []*shiftkey.Credential
	for _, c := range m.creds {
		if c.LoginName == login && m.hidden[c.ID] && c.ExpiresAt.After(now) {
			missed = append(missed, c)
		}
	}
	return missed, nil
}
func (m *rsCreds) LiveCredentials(_ context.Context, _, login string, now time.Time) ([]*shiftkey.Credential, shiftkey.LoginSalt, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var live []*shiftkey.Credential
	known := false
	for _, c := range m.creds {
		if c.LoginName == login {
			known = true
			if c.ExpiresAt.After(now) && !m.hidden[c.ID] {
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

// An attacker who recorded a driver's successful code-13 or MD5 answer
// cannot replay it: each connection gets a fresh server nonce (salt for
// MD5), so the recorded answer is refused with 28P01 on the next.
func TestRedshiftAuthAnswerCannotBeReplayed(t *testing.T) {
	for _, mode := range []string{RedshiftAuthSHA256, RedshiftAuthMD5} {
		t.Run(mode, func(t *testing.T) {
			addr, _ := rsGateway(t, func(g *Gateway) { g.RedshiftAuthPlaintext, g.RedshiftAuth = true, mode })
			var recorded []byte
			var firstChallenge []byte
			for i, want := range []byte{'R', 'E'} { // AuthenticationOk, then ErrorResponse for the replay
				c, err := net.DialTimeout("tcp", addr, 10*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				c.SetDeadline(time.Now().Add(20 * time.Second))
				if _, err := c.Write(startupMessage(rslogin.DriverParams("IAM:u", "dev"))); err != nil {
					t.Fatal(err)
				}
				typ, body := readMessage(t, c)
				if typ != 'R' || len(body) < 4 {
					t.Fatalf("connection %d: %q %x, want an authentication request", i, typ, body)
				}
				challenge := body[4:]
				if i == 0 {
					firstChallenge = challenge
					recorded = answer(t, mode, challenge, "pw-new")
				} else if bytes.Equal(challenge, firstChallenge) {
					t.Fatalf("the second connection got the same challenge %x", challenge)
				}
				if _, err := c.Write(recorded); err != nil {
					t.Fatal(err)
				}
				typ, body = readMessage(t, c)
				if typ != want || (want == 'R' && binary.BigEndian.Uint32(body) != 0) {
					t.Fatalf("connection %d: %q %q, want %q", i, typ, body, want)
				}
				if want == 'E' && !bytes.Contains(body, []byte("C28P01\x00")) {
					t.Fatalf("replayed answer: %q, want SQLSTATE 28P01", body)
				}
			}
		})
	}
}

// answer is the client message that proves password for challenge, the
// body of a code-13 (after the code) or MD5 authentication request.
func answer(t *testing.T, mode string, challenge []byte, password string) []byte {
	t.Helper()
	if mode == RedshiftAuthMD5 {
		pw := append([]byte(rslogin.MD5Response(password, "IAM:u", challenge)), 0)
		return append(binary.BigEndian.AppendUint32([]byte{'p'}, uint32(4+len(pw))), pw...)
	}
	// Int32 algorithm, then length-prefixed salt and server nonce.
	saltLen := binary.BigEndian.Uint32(challenge[4:])
	salt := challenge[8 : 8+saltLen]
	nonce := challenge[8+saltLen+4:]
	client := []byte("1733400000000")
	d := rslogin.Digest(password, salt, nonce, client)
	body := binary.BigEndian.AppendUint32(nil, uint32(len(d)))
	body = append(body, d...)
	body = binary.BigEndian.AppendUint32(body, uint32(len(client)))
	body = append(body, client...)
	return append(binary.BigEndian.AppendUint32([]byte{'d'}, uint32(4+len(body))), body...)
}

func startupMessage(params map[string]string) []byte {
	body := binary.BigEndian.AppendUint32(nil, 196608)
	for _, k := range slices.Sorted(maps.Keys(params)) {
		body = append(append(append(append(body, k...), 0), params[k]...), 0)
	}
	body = append(body, 0)
	return append(binary.BigEndian.AppendUint32(nil, uint32(4+len(body))), body...)
}

// readMessage reads one backend message, skipping nothing.
func readMessage(t *testing.T, c net.Conn) (byte, []byte) {
	t.Helper()
	var head [5]byte
	if _, err := io.ReadFull(c, head[:]); err != nil {
		t.Fatal(err)
	}
	body := make([]byte, binary.BigEndian.Uint32(head[1:])-4)
	if _, err := io.ReadFull(c, body); err != nil {
		t.Fatal(err)
	}
	return head[0], body
}

// A credential missing from the store's answer (issued on another replica
// a moment ago) logs in with code 13 and MD5 as with SCRAM
// (TestLoginFindsMissedCredential): each exchange goes on to
// MissedCredentials when no cached credential matched.
func TestRedshiftDriverLoginFindsMissed(t *testing.T) {
	for _, mode := range []string{RedshiftAuthSHA256, RedshiftAuthMD5} {
		t.Run("mode="+mode, func(t *testing.T) {
			addr, tc := rsGateway(t, func(g *Gateway) {
				g.RedshiftAuth = mode
				g.Credentials.(*rsCreds).hidden = map[string]bool{"new": true}
			})
			if _, err := rsLogin(t, addr, tc, rslogin.DriverParams("IAM:u", "dev"), "pw-new"); err != nil {
				t.Fatalf("the credential missing from the answer: %v", err)
			}
			if _, err := rsLogin(t, addr, tc, rslogin.DriverParams("IAM:u", "dev"), "pw-old"); err != nil {
				t.Fatalf("the cached credential: %v", err)
			}
			if _, err := rsLogin(t, addr, tc, rslogin.DriverParams("IAM:u", "dev"), "pw-gone"); serverCode(err) != codeInvalidPassword {
				t.Fatalf("the expired credential: %v, want %s", err, codeInvalidPassword)
			}
		})
	}
}

// A credential that expires between the code-13 or MD5 challenge and the
// client's answer does not log in: the proof is checked against the
// credentials live when it arrives, not those read when the login began.
func TestRedshiftAuthCredentialExpiredDuringExchange(t *testing.T) {
	for _, mode := range []string{RedshiftAuthSHA256, RedshiftAuthMD5} {
		t.Run(mode, func(t *testing.T) {
			var mu sync.Mutex
			skew := time.Duration(0)
			addr, _ := rsGateway(t, func(g *Gateway) {
				g.RedshiftAuthPlaintext, g.RedshiftAuth = true, mode
				g.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(skew) }
			})
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(20 * time.Second))
			c.Write(startupMessage(rslogin.DriverParams("IAM:u", "dev")))
			typ, body := readMessage(t, c)
			if typ != 'R' || len(body) < 4 {
				t.Fatalf("%q %x, want an authentication request", typ, body)
			}
			mu.Lock()
			skew = 90 * time.Minute // "old" (an hour) has expired, "new" (two) has not
			mu.Unlock()
			c.Write(answer(t, mode, body[4:], "pw-old"))
			if typ, body = readMessage(t, c); typ != 'E' || !bytes.Contains(body, []byte("C28P01\x00")) {
				t.Fatalf("a credential expired during the exchange: %q %q, want 28P01", typ, body)
			}
		})
	}
}

// Found in an attacker's review of the drivers' exchanges: an MD5 answer
// (a password message) without its terminating NUL got no ErrorResponse,
// only a closed connection: pgproto3 reports it as io.EOF, which the
// gateway took for the client hanging up. It is a protocol violation,
// answered 08P01 as PostgreSQL answers it.
func TestMD5AnswerWithoutTerminatorIsAProtocolViolation(t *testing.T) {
	addr, _ := rsGateway(t, func(g *Gateway) { g.RedshiftAuthPlaintext, g.RedshiftAuth = true, RedshiftAuthMD5 })
	for _, body := range []string{"", "md5deadbeef"} {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(20 * time.Second))
		c.Write(startupMessage(rslogin.DriverParams("IAM:u", "dev")))
		if typ, b := readMessage(t, c); typ != 'R' || binary.BigEndian.Uint32(b) != rslogin.AuthMD5 {
			t.Fatalf("%q %x, want an MD5 request", typ, b)
		}
		c.Write(append(binary.BigEndian.AppendUint32([]byte{'p'}, uint32(4+len(body))), body...))
		var head [5]byte
		if _, err := io.ReadFull(c, head[:]); err != nil {
			t.Fatalf("%q without its NUL: %v, want an ErrorResponse", body, err)
		}
		b := make([]byte, binary.BigEndian.Uint32(head[1:])-4)
		io.ReadFull(c, b)
		if head[0] != 'E' || !bytes.Contains(b, []byte("C08P01\x00")) {
			t.Fatalf("%q without its NUL: %q %q, want 08P01", body, head[0], b)
		}
	}
}
