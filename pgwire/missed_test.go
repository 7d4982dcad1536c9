package pgwire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shiftkey/shiftkey"
)

// behindCreds answers LiveCredentials as a cache behind another replica's
// issue does: the login exists, its one credential is not in the answer;
// MissedCredentials has it (or fails with err).
type behindCreds struct {
	memCreds
	asked *atomic.Int32
	down  *atomic.Bool // MissedCredentials fails
}

func (m behindCreds) LiveCredentials(_ context.Context, _, login string, _ time.Time) ([]*shiftkey.Credential, shiftkey.LoginSalt, bool, error) {
	if login != m.cred.LoginName {
		return nil, shiftkey.LoginSalt{}, false, nil
	}
	older := *m.cred
	older.ID, older.StoredKey = "older", make([]byte, 32) // matches no proof
	return []*shiftkey.Credential{&older}, shiftkey.LoginSalt{Salt: []byte("0123456789abcdef"), Iterations: 4096}, true, nil
}

func (m behindCreds) MissedCredentials(_ context.Context, _, login string, known []*shiftkey.Credential, _ time.Time) ([]*shiftkey.Credential, error) {
	m.asked.Add(1)
	if len(known) != 1 || known[0].ID != "older" {
		return nil, fmt.Errorf("known = %v, want the answer of LiveCredentials", known)
	}
	if m.down.Load() {
		return nil, errors.New("store down")
	}
	return []*shiftkey.Credential{m.cred}, nil
}

// A proof that matches none of the store's answer is checked against what
// the answer lacked (a credential just issued on another replica), for
// every way of logging in; an unknown login asks nothing more, and a
// failed second lookup is a lookup failure (08006), not a wrong password.
func TestLoginFindsMissedCredential(t *testing.T) {
	var asked atomic.Int32
	var down atomic.Bool
	g, addr := newGateway(t, func(g *Gateway) {
		g.PoolSize = 2
		g.Credentials = behindCreds{memCreds: g.Credentials.(memCreds), asked: &asked, down: &down}
	})
	host, port, _ := net.SplitHostPort(addr)
	connect := func(user string) error {
		cfg, err := pgconn.ParseConfig(fmt.Sprintf("host=%s port=%s user=%s password=pw sslmode=disable", host, port, user))
		if err != nil {
			t.Fatal(err)
		}
		c, err := pgconn.ConnectConfig(context.Background(), cfg)
		if err == nil {
			c.Close(context.Background())
		}
		return err
	}
	if err := connect("IAM:u"); err != nil {
		t.Fatalf("the credential missing from the cached answer does not log in: %v", err)
	}
	if n := asked.Load(); n != 1 {
		t.Fatalf("MissedCredentials asked %d times, want 1", n)
	}
	if err := connect("IAM:nobody"); err == nil {
		t.Fatal("an unknown login logged in")
	}
	if n := asked.Load(); n != 1 {
		t.Fatalf("an unknown login asked MissedCredentials (%d calls)", n)
	}
	failures := g.Failures()
	down.Store(true)
	err := connect("IAM:u")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != codeConnectionFailure {
		t.Fatalf("with MissedCredentials failing: %v, want SQLSTATE %s", err, codeConnectionFailure)
	}
	if g.Failures() != failures {
		t.Fatal("a failed lookup counted as a failed password")
	}
}
