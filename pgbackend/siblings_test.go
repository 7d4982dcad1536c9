package pgbackend_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/shiftkey/shiftkey/pgbackend"
	"github.com/shiftkey/shiftkey/sqlite"
)

// Two gateways on one backend server (a cluster and a workgroup, as the
// example config has them) in one process: a role's session through each
// asks for the same group. Memberships are the server's, so the first
// session's end must not revoke the group the second's still holds; the
// last one's end revokes it. On both stores: SQLite (one process) and a
// PostgreSQL store.
func TestGatewaysOnOneServerShareASessionGroup(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(t *testing.T, c *pgbackend.Config) // sets the config's store, as serve does
	}{
		{"sqlite", func(t *testing.T, c *pgbackend.Config) {
			st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			c.Grants = st
		}},
		{"postgres", func(t *testing.T, c *pgbackend.Config) {
			st := newStoreFixture(t).open(t)
			c.Grants, c.Cuts, c.Now = st, st, st.Now
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newRaceFixture(t)
			ctx := context.Background()
			base := pgbackend.Config{Host: f.srv.SocketDir(), Port: f.srv.Port(), AdminUser: f.srv.Superuser(), AdminDatabase: f.db}
			tc.store(t, &base)
			gateway := func(scope string, siblings func() []*pgbackend.Backend) *pgbackend.Backend {
				c := base
				c.Scope, c.Siblings = scope, siblings
				b, err := pgbackend.New(ctx, c)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(b.Close)
				return b
			}
			var cluster, workgroup *pgbackend.Backend
			cluster = gateway("analytics", func() []*pgbackend.Backend { return []*pgbackend.Backend{workgroup} })
			workgroup = gateway("analytics-wg", func() []*pgbackend.Backend { return []*pgbackend.Backend{cluster} })

			for _, order := range [][2]*pgbackend.Backend{{cluster, workgroup}, {workgroup, cluster}} {
				first, notices := f.prepare(t, order[0], ctx, []string{f.group})
				if len(notices) != 0 || !f.member(t) {
					t.Fatalf("%s's session: notices %v, member %v; want the group granted", order[0].Scope(), notices, f.member(t))
				}
				second, notices := f.prepare(t, order[1], ctx, []string{f.group})
				if len(notices) != 0 {
					t.Fatalf("%s's session was told %v; want the group shared with %s's session", order[1].Scope(), notices, order[0].Scope())
				}
				first.Release(ctx)
				if !f.member(t) {
					t.Fatalf("%s's session's end revoked the group from %s's live session", order[0].Scope(), order[1].Scope())
				}
				second.Release(ctx)
				if f.member(t) {
					t.Fatalf("the last session's end (%s's) left the group granted", order[1].Scope())
				}
			}
		})
	}
}
