package pgwire

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/internal/benchcpu"
	"github.com/shiftkey/shiftkey/scram"
)

// oneIteration is a credential store whose login uses a single PBKDF2
// iteration, so that the client's key derivation does not hide the
// gateway's own cost in BenchmarkLogin.
type oneIteration struct{ memCreds }

var benchKeys = scram.NewKeys("pw", []byte("0123456789abcdef"), 1)

func (m oneIteration) LiveCredentials(ctx context.Context, cluster, login string, now time.Time) ([]*shiftkey.Credential, shiftkey.LoginSalt, bool, error) {
	creds, salt, ok, err := m.memCreds.LiveCredentials(ctx, cluster, login, now)
	salt.Iterations = 1
	return creds, salt, ok, err
}

// BenchmarkLogin is one short session through the gateway, as pgbench -C
// makes them: connect, SCRAM, a backend from the pool, one query,
// Terminate.
func BenchmarkLogin(b *testing.B) {
	relays := map[string]func(*Gateway){"goroutine": func(*Gateway) {}}
	if EventRelaySupported {
		for _, e := range []string{EngineEpoll, EngineIOURing} {
			r, err := NewEventRelay(RelayConfig{Threads: 1, Engine: e})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			relays[e] = func(g *Gateway) { g.Relay = r }
		}
	}
	for name, relay := range relays {
		b.Run(name, func(b *testing.B) {
			g, addr := newGateway(b, func(g *Gateway) {
				relay(g)
				g.PoolSize = 4
				c := g.Credentials.(memCreds).cred
				cp := *c
				cp.StoredKey, cp.ServerKey = benchKeys.StoredKey[:], benchKeys.ServerKey[:]
				g.Credentials = oneIteration{memCreds{&cp}}
			})
			host, port, _ := net.SplitHostPort(addr)
			cfg, err := pgconn.ParseConfig(fmt.Sprintf("host=%s port=%s user=IAM:u password=pw sslmode=disable database=%s", host, port, g.DefaultDB))
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				c, err := pgconn.ConnectConfig(ctx, cfg)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Exec(ctx, "SELECT 1").ReadAll(); err != nil {
					b.Fatal(err)
				}
				c.Close(ctx)
			}
		})
	}
}

// manyCreds is a login with n live credentials, ordered oldest first as the
// stores return them; the client holds the newest one's password.
type manyCreds struct {
	oneIteration
	creds []*shiftkey.Credential
}

func (m manyCreds) LiveCredentials(ctx context.Context, cluster, login string, now time.Time) ([]*shiftkey.Credential, shiftkey.LoginSalt, bool, error) {
	_, salt, ok, err := m.oneIteration.LiveCredentials(ctx, cluster, login, now)
	return m.creds, salt, ok, err
}

// benchCandidates is n credentials like c, oldest first, of which only the
// newest has benchKeys (password "pw").
func benchCandidates(c *shiftkey.Credential, n int) []*shiftkey.Credential {
	other := scram.NewKeys("not-the-password", []byte("0123456789abcdef"), 1)
	creds := make([]*shiftkey.Credential, n)
	for i := range creds {
		cp := *c
		cp.ID = fmt.Sprint(i)
		cp.StoredKey, cp.ServerKey = other.StoredKey[:], other.ServerKey[:]
		creds[i] = &cp
	}
	creds[n-1].StoredKey, creds[n-1].ServerKey = benchKeys.StoredKey[:], benchKeys.ServerKey[:]
	return creds
}

// BenchmarkLoginManyCredentials is BenchmarkLogin's session for a login
// name with 10,000 live credentials, the client using the newest: the
// gateway's CPU per login must not grow with the login's other
// credentials (report: ns/op and the gateway's share of it).
func BenchmarkLoginManyCredentials(b *testing.B) {
	for _, n := range []int{1, 10000} { // the same session for a name with one credential, to compare
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			g, addr := newGateway(b, func(g *Gateway) {
				g.PoolSize = 4
				c := g.Credentials.(memCreds).cred
				g.Credentials = manyCreds{oneIteration{memCreds{c}}, benchCandidates(c, n)}
			})
			host, port, _ := net.SplitHostPort(addr)
			cfg, err := pgconn.ParseConfig(fmt.Sprintf("host=%s port=%s user=IAM:u password=pw sslmode=disable database=%s", host, port, g.DefaultDB))
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			cpu := benchcpu.Start(b)
			for b.Loop() {
				c, err := pgconn.ConnectConfig(ctx, cfg)
				if err != nil {
					b.Fatal(err)
				}
				c.Close(ctx)
			}
			cpu.Report()
		})
	}
}
