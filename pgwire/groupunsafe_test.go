package pgwire

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/internal/pgtest"
)

// A group that turns unsafe while held is revoked from the role (the next
// session that asks for it, or the sweep, sees it), but a session that had
// run SET ROLE g before the REVOKE kept acting as g: with CREATE on a
// schema given to g meanwhile, it created a SECURITY DEFINER function as g,
// to call once its credential expired. The sessions that held the group
// are now ended with FATAL 57P01 naming it, and their records say
// group_unsafe; a session of the role that did not hold it, and the one
// that asked and was refused it, go on.
func TestSessionsHoldingAGroupThatTurnedUnsafeAreEnded(t *testing.T) {
	plainRelays(t, func(t *testing.T, relay func(*Gateway)) {
		ctx := context.Background()
		rec := &endRecorder{}
		g, addr := newGateway(t, func(g *Gateway) {
			relay(g)
			g.Observer = rec
			user, group := g.DefaultDB+"_u", g.DefaultDB+"_g"
			g.Credentials = byLogin{
				"IAM:withgroup": {ID: "a", LoginName: "IAM:withgroup", DBUser: user, DBGroups: []string{group},
					StoredKey: fuzzKeys.StoredKey[:], ServerKey: fuzzKeys.ServerKey[:]},
				"IAM:nogroup": {ID: "b", LoginName: "IAM:nogroup", DBUser: user,
					StoredKey: fuzzKeys.StoredKey[:], ServerKey: fuzzKeys.ServerKey[:]},
			}
		})
		user, group := g.DefaultDB+"_u", g.DefaultDB+"_g"
		quser, qgroup := pgx.Identifier{user}.Sanitize(), pgx.Identifier{group}.Sanitize()
		admin := superuser(t, g.DefaultDB)
		for _, sql := range []string{"CREATE ROLE " + qgroup + " NOLOGIN", "CREATE ROLE " + quser + " LOGIN", "CREATE SCHEMA s"} {
			if _, err := admin.Exec(ctx, sql); err != nil {
				t.Fatal(sql, err)
			}
		}
		t.Cleanup(func() {
			admin.Exec(ctx, "DROP SCHEMA IF EXISTS s CASCADE")
			admin.Exec(ctx, "DROP ROLE IF EXISTS "+quser)
			admin.Exec(ctx, "DROP ROLE IF EXISTS "+qgroup)
		})
		member := func() bool { return pgtest.Member(t, admin, user, group) }

		s1 := loginAs(t, addr, "IAM:withgroup", g.DefaultDB)
		if !member() {
			t.Fatal("the group was not granted")
		}
		if _, err := s1.Exec(ctx, "SET ROLE "+qgroup); err != nil {
			t.Fatal(err)
		}
		other := loginAs(t, addr, "IAM:nogroup", g.DefaultDB)
		if _, err := admin.Exec(ctx, "GRANT CREATE ON SCHEMA s TO "+qgroup); err != nil {
			t.Fatal(err)
		}
		// The next session that asks for the group revokes it, once the
		// verdict and catalogs the gateway reuses (5 s) are read again:
		// until then a session shares the membership, and leaves.
		var s2 *pgx.Conn
		if !waitUntil(20*time.Second, func() bool {
			c := loginAs(t, addr, "IAM:withgroup", g.DefaultDB)
			if member() {
				c.Close(ctx)
				time.Sleep(200 * time.Millisecond)
				return false
			}
			s2 = c
			return true
		}) {
			t.Fatal("no later session of the role revoked the group that may now create in a schema")
		}

		_, err := s1.Exec(ctx, "CREATE FUNCTION s.f() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1'")
		var made bool
		if qerr := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'f' AND pronamespace = 's'::regnamespace)").Scan(&made); qerr != nil {
			t.Fatal(qerr)
		}
		if made || err == nil {
			t.Fatalf("the session that ran SET ROLE %s before the revoke still created a SECURITY DEFINER function as it (error: %v)", group, err)
		}
		wantFatal(t, "SET ROLE", err, fmt.Sprintf("group %q of role %q turned unsafe (", group, user))
		if !strings.Contains(err.Error(), "create in a schema") {
			t.Errorf("the FATAL %q does not say why", err)
		}
		// The membership was the role's: the session that never asked for
		// the group could have run SET ROLE to it too.
		_, err = other.Exec(ctx, "SELECT 1")
		wantFatal(t, "the role's session without the group", err, fmt.Sprintf("group %q of role %q turned unsafe (", group, user))
		if _, err := s2.Exec(ctx, "SELECT 1"); err != nil {
			t.Errorf("the session whose login found the group unsafe, and was refused it, was ended too: %v", err)
		}
		cut := func() int {
			n := 0
			for _, r := range rec.endReasons() {
				if r == shiftkey.EndGroupUnsafe {
					n++
				}
			}
			return n
		}
		if !waitUntil(10*time.Second, func() bool { return cut() >= 2 }) || cut() != 2 {
			t.Fatalf("session end reasons %v, want two %s", rec.endReasons(), shiftkey.EndGroupUnsafe)
		}
	})
}
