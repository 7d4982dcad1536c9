package pgwire

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/scram"
	"github.com/shiftkey/shiftkey/sqlite"
)

// beforeFinal is a client connection that runs hook once, just before the
// client sends its SCRAM client-final message (its second 'p' message).
type beforeFinal struct {
	net.Conn
	hook  func()
	ps    int
	fired sync.Once
}

func (c *beforeFinal) Write(b []byte) (int, error) {
	if len(b) > 0 && b[0] == 'p' {
		if c.ps++; c.ps == 2 {
			c.fired.Do(c.hook)
		}
	}
	return c.Conn.Write(b)
}

// A credential revoked while a login with it is under way (the client has
// started its SCRAM exchange, which read the login's credentials, and
// holds its proof back until the revocation has returned) does not log
// in: the revocation is honoured by the next message as by the next
// login. The store is the embedded one, answering from its login cache.
func TestCredentialRevokedDuringLoginDoesNotLogIn(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	salt, err := st.LoginSalt(ctx, "c", "IAM:u", "", shiftkey.LoginSalt{Salt: []byte("0123456789abcdef"), Iterations: 4096})
	if err != nil {
		t.Fatal(err)
	}
	keys := scram.NewKeys("pw", salt.Salt, salt.Iterations)
	now := time.Now()
	if err := st.CreateCredential(ctx, &shiftkey.Credential{ID: "doomed", Cluster: "c", LoginName: "IAM:u", DBUser: "u", StoredKey: keys.StoredKey[:],
		ServerKey: keys.ServerKey[:], PrincipalARN: "arn:aws:iam::123456789012:user/mallory", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	logins := &loginLog{}
	g, addr := fakeGateway(t, &fakeBackend{}, func(g *Gateway) { g.Credentials, g.Revoked, g.Observer = st, st, logins })
	host, port, _ := net.SplitHostPort(addr)
	login := func(hook func()) error {
		cfg, err := pgconn.ParseConfig(fmt.Sprintf("host=%s port=%s user=IAM:u password=pw sslmode=disable connect_timeout=10", host, port))
		if err != nil {
			t.Fatal(err)
		}
		cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil || hook == nil {
				return c, err
			}
			return &beforeFinal{Conn: c, hook: hook}, nil
		}
		c, err := pgconn.ConnectConfig(ctx, cfg)
		if err == nil {
			c.Close(ctx)
		}
		return err
	}
	// Premise: it logs in, and its login name is cached.
	if err := login(nil); err != nil {
		t.Fatalf("before the revocation: %v", err)
	}
	revoked := false
	err = login(func() {
		if _, err := st.RevokeCredentials(ctx, shiftkey.CredentialFilter{ID: "doomed"}, time.Now(), false); err != nil {
			t.Error(err)
		}
		revoked = true
	})
	if !revoked {
		t.Fatal("premise: the revocation did not run during the login")
	}
	if code(err) != codeInvalidPassword {
		t.Fatalf("a login proving a credential revoked during its exchange: %v, want 28P01", err)
	}
	// The premise's login is reported once its client was let in, which
	// may come after the second's refusal is reported (once its client
	// had the 28P01): the refused one is found by what it says, not by
	// its place.
	var refused []shiftkey.Login
	for _, e := range logins.reported(t, 2) {
		if !e.OK {
			refused = append(refused, e)
		}
	}
	if len(refused) != 1 || refused[0].Reason != shiftkey.LoginRevoked || refused[0].CredentialID != "doomed" {
		t.Fatalf("refused logins reported as %+v, want one: revoked, doomed", refused)
	}
	ended(t, g)
}
