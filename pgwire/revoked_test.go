package pgwire

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/rslogin"
	"github.com/shiftkey/shiftkey/scram"
)

// revokedList is the store's answer of revoked credentials (RevokedKeys).
type revokedList []*shiftkey.Credential

func (r revokedList) RevokedCredentials(_ context.Context, _, login string, _ time.Time) ([]*shiftkey.Credential, error) {
	if login != "IAM:u" {
		return nil, nil
	}
	return r, nil
}

// loginLog keeps the logins a gateway reports.
type loginLog struct {
	mu     sync.Mutex
	logins []shiftkey.Login
}

func (l *loginLog) Login(e *shiftkey.Login) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.logins = append(l.logins, *e)
}
func (l *loginLog) SessionEnd(*shiftkey.SessionEnd) {}

// reported waits for n logins reported by the gateway: it reports a login
// after answering the client, so a client's next attempt may be reported
// before it.
func (l *loginLog) reported(t *testing.T, n int) []shiftkey.Login {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.Lock()
		got := append([]shiftkey.Login(nil), l.logins...)
		l.mu.Unlock()
		if len(got) == n {
			return got
		}
		if len(got) > n || time.Now().After(deadline) {
			t.Fatalf("want %d logins reported, got %+v", n, got)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// wantOneWrongPassword checks that of logins (one live credential's and
// one wrong password's, in either order) the failed one is a wrong
// password without a credential.
func wantOneWrongPassword(t *testing.T, logins []shiftkey.Login) {
	t.Helper()
	var wrong []shiftkey.Login
	for _, e := range logins {
		if !e.OK {
			wrong = append(wrong, e)
		}
	}
	if len(wrong) != 1 || wrong[0].Reason != shiftkey.LoginWrongPassword || wrong[0].CredentialID != "" {
		t.Fatalf("a wrong password reported as %+v, want one wrong_password without a credential", wrong)
	}
}

// An attacker holding a revoked credential's password tries every way the
// gateway authenticates: SCRAM in plaintext, SCRAM with channel binding
// over TLS, and the cleartext password over TLS. Each is refused with the
// same 28P01 as a wrong password, and reported as revoked with the
// credential and its principal; the live credential of the same login
// still logs in, and a wrong password stays a wrong password.
func TestRevokedCredentialLogsInNowhere(t *testing.T) {
	salt := []byte("0123456789abcdef") // memCreds' login salt
	gone := scram.NewKeys("gone", salt, 4096)
	revoked := revokedList{{ID: "r1", Cluster: "c", LoginName: "IAM:u", DBUser: "u", PrincipalARN: "arn:aws:iam::123456789012:user/mallory",
		StoredKey: gone.StoredKey[:], ServerKey: gone.ServerKey[:]}}
	cfg, _ := testTLS(t)
	for _, tc := range []struct {
		name, mode string
		cleartext  bool
	}{
		{"SCRAM", "sslmode=disable", false},
		{"SCRAM-SHA-256-PLUS", "sslmode=require channel_binding=require", false},
		{"cleartext over TLS", "sslmode=require", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logins := &loginLog{}
			_, addr := newGateway(t, func(g *Gateway) {
				g.Revoked, g.Observer, g.TLS, g.AllowCleartext = revoked, logins, cfg, tc.cleartext
			})
			host, port, _ := net.SplitHostPort(addr)
			connect := func(pw string) error {
				c, err := pgx.Connect(context.Background(), fmt.Sprintf("host=%s port=%s user=IAM:u password=%s %s connect_timeout=10", host, port, pw, tc.mode))
				if err == nil {
					c.Close(context.Background())
				}
				return err
			}
			if err := connect("gone"); code(err) != codeInvalidPassword {
				t.Fatalf("the revoked password: %v, want 28P01", err)
			}
			if e := logins.reported(t, 1)[0]; e.OK || e.Reason != shiftkey.LoginRevoked || e.CredentialID != "r1" || e.PrincipalARN != revoked[0].PrincipalARN {
				t.Fatalf("the revoked login reported as %+v, want revoked, r1, mallory", e)
			}
			if err := connect("pw"); err != nil {
				t.Fatalf("the live credential: %v", err)
			}
			if err := connect("nope"); code(err) != codeInvalidPassword {
				t.Fatalf("a wrong password: %v, want 28P01", err)
			}
			wantOneWrongPassword(t, logins.reported(t, 3)[1:])
		})
	}
}

// AWS's Redshift drivers log in with Redshift's digest (code 13) or MD5,
// not SCRAM: a revoked credential's password is refused there too with
// 28P01 and reported as revoked, with the credential and its principal.
func TestRevokedCredentialLogsInNowhereWithRedshiftDrivers(t *testing.T) {
	salt := []byte("salt-of-IAM:u-16") // rsGateway's
	sha := sha256.Sum256(append([]byte("gone"), salt...))
	md := md5.Sum([]byte("gone" + "IAM:u"))
	gone := scram.NewKeys("gone", salt, 4096)
	revoked := revokedList{{ID: "r1", Cluster: "c", LoginName: "IAM:u", DBUser: "u", PrincipalARN: "arn:aws:iam::123456789012:user/mallory",
		StoredKey: gone.StoredKey[:], ServerKey: gone.ServerKey[:], DigestSHA256: sha[:], DigestMD5: md[:]}}
	for _, mode := range []string{RedshiftAuthSHA256, RedshiftAuthMD5} {
		t.Run(mode, func(t *testing.T) {
			logins := &loginLog{}
			addr, tc := rsGateway(t, func(g *Gateway) { g.RedshiftAuth, g.Revoked, g.Observer = mode, revoked, logins })
			if _, err := rsLogin(t, addr, tc, rslogin.DriverParams("IAM:u", "dev"), "gone"); serverCode(err) != codeInvalidPassword {
				t.Fatalf("the revoked password: %v, want 28P01", err)
			}
			if e := logins.reported(t, 1)[0]; e.OK || e.Reason != shiftkey.LoginRevoked || e.CredentialID != "r1" || e.PrincipalARN != revoked[0].PrincipalARN {
				t.Fatalf("the revoked login reported as %+v, want revoked, r1, mallory", e)
			}
			if _, err := rsLogin(t, addr, tc, rslogin.DriverParams("IAM:u", "dev"), "pw-new"); err != nil {
				t.Fatalf("the live credential: %v", err)
			}
			if _, err := rsLogin(t, addr, tc, rslogin.DriverParams("IAM:u", "dev"), "nope"); serverCode(err) != codeInvalidPassword {
				t.Fatalf("a wrong password: %v, want 28P01", err)
			}
			wantOneWrongPassword(t, logins.reported(t, 3)[1:])
		})
	}
}

// revokedLookups counts the revoked-credential lookups per login name.
type revokedLookups struct {
	mu    sync.Mutex
	names map[string]int
}

func (r *revokedLookups) RevokedCredentials(_ context.Context, _, login string, _ time.Time) ([]*shiftkey.Credential, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.names[login]++
	return nil, nil
}

func (r *revokedLookups) count(login string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.names[login]
}

// Found in an attacker's review of the Redshift drivers' exchanges: a
// wrong password for a login that has credentials looked its revoked ones
// up (a store query, ~200 µs with SQLite), an unknown login's did not, so
// the failure of an unknown login came that much sooner, in SCRAM, code 13
// and MD5 alike: timing a few failed logins told which names have
// credentials, the very thing the decoy salt hides. An unknown login's
// failure now makes the same lookup.
func TestUnknownLoginFailsWithTheLookupsOfAKnownOne(t *testing.T) {
	for _, mode := range []string{"SCRAM", RedshiftAuthSHA256, RedshiftAuthMD5} {
		t.Run(mode, func(t *testing.T) {
			rec := &revokedLookups{names: map[string]int{}}
			addr, tc := rsGateway(t, func(g *Gateway) {
				g.Revoked = rec
				if mode != "SCRAM" {
					g.RedshiftAuth = mode
				}
			})
			for _, user := range []string{"IAM:u", "IAM:nobody"} {
				var err error
				if mode == "SCRAM" {
					_, err = pgx.Connect(context.Background(), "postgres://"+strings.ReplaceAll(user, ":", "%3A")+":wrong@"+addr+"/dev?sslmode=disable&connect_timeout=10")
					err = errors.New(code(err))
				} else {
					_, err = rsLogin(t, addr, tc, rslogin.DriverParams(user, "dev"), "wrong")
					err = errors.New(serverCode(err))
				}
				if err.Error() != codeInvalidPassword {
					t.Fatalf("%s: %v, want %s", user, err, codeInvalidPassword)
				}
			}
			if k, u := rec.count("IAM:u"), rec.count("IAM:nobody"); k != u {
				t.Fatalf("revoked lookups of a wrong password: %d for a known login, %d for an unknown one", k, u)
			}
		})
	}
}
