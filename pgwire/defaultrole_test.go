package pgwire

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/internal/pgtest"
)

// byLogin is a credential store of several logins, each with its own
// credential (password "pw").
type byLogin map[string]*shiftkey.Credential

func (m byLogin) LoginSalt(context.Context, string, string, string, shiftkey.LoginSalt) (shiftkey.LoginSalt, error) {
	return shiftkey.LoginSalt{Salt: []byte("0123456789abcdef"), Iterations: 4096}, nil
}
func (m byLogin) CreateCredential(context.Context, *shiftkey.Credential) error { return nil }
func (m byLogin) LiveCredentials(_ context.Context, _, login string, _ time.Time) ([]*shiftkey.Credential, shiftkey.LoginSalt, bool, error) {
	c, ok := m[login]
	if !ok {
		return nil, shiftkey.LoginSalt{}, false, nil
	}
	return []*shiftkey.Credential{c}, shiftkey.LoginSalt{Salt: []byte("0123456789abcdef"), Iterations: 4096}, true, nil
}
func (m byLogin) MissedCredentials(context.Context, string, string, []*shiftkey.Credential, time.Time) ([]*shiftkey.Credential, error) {
	return nil, nil
}
func (m byLogin) DeleteCredentials(context.Context, string, string) error          { return nil }
func (m byLogin) DeleteExpiredCredentials(context.Context, time.Time) (int, error) { return 0, nil }

func loginAs(t *testing.T, addr, login, db string) *pgx.Conn {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	c, err := pgx.Connect(context.Background(), fmt.Sprintf("host=%s port=%s user=%s password=pw dbname=%s sslmode=%s connect_timeout=30",
		host, port, login, db, sslMode(addr)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// A role may give itself a default role (ALTER ROLE self SET role = g),
// which PostgreSQL applies at login only while the role belongs to g. A
// backend that logged in while a session held g for the role must not go
// on running as g, from the pool, for a later session of the role that
// was never granted g, after g was revoked.
func TestPooledBackendKeepsNoRevokedDefaultRole(t *testing.T) {
	relays(t, func(t *testing.T, relay func(*Gateway)) {
		ctx := context.Background()
		g, addr, admin, user, group := pooledRoleGateway(t, relay)
		member := func() bool { return pgtest.Member(t, admin, user, group) }
		whoami := func(c *pgx.Conn) string {
			var who string
			if err := c.QueryRow(ctx, "SELECT current_user").Scan(&who); err != nil {
				t.Fatal(err)
			}
			return who
		}

		// The session IAM allows the group: the role sets itself a default.
		s1 := loginAs(t, addr, "IAM:withgroup", g.DefaultDB)
		if !member() {
			t.Fatal("the group was not granted")
		}
		if _, err := s1.Exec(ctx, "ALTER ROLE "+pgx.Identifier{user}.Sanitize()+" SET role = "+pgx.Identifier{group}.Sanitize()); err != nil {
			t.Fatal(err)
		}
		// A concurrent session of the role, without the group, ends and
		// its backend goes to the pool.
		s2 := loginAs(t, addr, "IAM:nogroup", g.DefaultDB)
		whoami(s2)
		closeToPool(t, g, s2)
		// The role's default goes, and the session holding the group ends
		// (left in a transaction, so its own backend is not pooled).
		if _, err := s1.Exec(ctx, "ALTER ROLE "+pgx.Identifier{user}.Sanitize()+" RESET role"); err != nil {
			t.Fatal(err)
		}
		if _, err := s1.Exec(ctx, "BEGIN"); err != nil {
			t.Fatal(err)
		}
		s1.Close(ctx)
		if !waitUntil(5*time.Second, func() bool { return !member() }) {
			t.Fatal("the group was not revoked")
		}
		if n := g.pooledCount(); n != 1 {
			t.Fatalf("%d pooled backends, want 1", n)
		}

		s3 := loginAs(t, addr, "IAM:nogroup", g.DefaultDB)
		if who := whoami(s3); who != user {
			t.Fatalf("a session granted no group runs as %q, want %q", who, user)
		}
		if _, err := s3.Exec(ctx, "RESET ROLE"); err != nil {
			t.Fatal(err)
		}
		if who := whoami(s3); who != user {
			t.Fatalf("after RESET ROLE, a session granted no group runs as %q, want %q", who, user)
		}
	})
}

// pooledRoleGateway is a gateway on relay pooling up to 4 backends, with
// role user (LOGIN) and group (NOLOGIN) made on its backend, dropped after
// the test, and two credentials of user: IAM:withgroup asks for group,
// IAM:nogroup for none.
func pooledRoleGateway(t *testing.T, relay func(*Gateway)) (g *Gateway, addr string, admin *pgx.Conn, user, group string) {
	t.Helper()
	ctx := context.Background()
	g, addr = newGateway(t, func(g *Gateway) {
		relay(g)
		g.PoolSize = 4
		user, group := g.DefaultDB+"_u", g.DefaultDB+"_g"
		g.Credentials = byLogin{
			"IAM:withgroup": {ID: "a", LoginName: "IAM:withgroup", DBUser: user, DBGroups: []string{group},
				StoredKey: fuzzKeys.StoredKey[:], ServerKey: fuzzKeys.ServerKey[:]},
			"IAM:nogroup": {ID: "b", LoginName: "IAM:nogroup", DBUser: user,
				StoredKey: fuzzKeys.StoredKey[:], ServerKey: fuzzKeys.ServerKey[:]},
		}
	})
	user, group = g.DefaultDB+"_u", g.DefaultDB+"_g"
	admin = superuser(t, g.DefaultDB)
	for _, sql := range []string{
		"CREATE ROLE " + pgx.Identifier{group}.Sanitize() + " NOLOGIN",
		"CREATE ROLE " + pgx.Identifier{user}.Sanitize() + " LOGIN",
	} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		admin.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{user}.Sanitize())
		admin.Exec(ctx, "DROP ROLE IF EXISTS "+pgx.Identifier{group}.Sanitize())
	})
	return g, addr, admin, user, group
}
