package pgbackend_test

import (
	"context"
	"testing"

	"github.com/shiftkey/shiftkey/pgbackend"
)

// Two replicas on one PostgreSQL store, each serving both gateways of one
// backend server (a cluster and a workgroup, as replicas of one config
// do): a role's session through replica A's cluster gateway and one
// through replica B's workgroup gateway ask for the same group. Neither
// the first session's end nor either replica's sweep revokes it from the
// second's; the last end revokes it.
func TestSiblingGatewaysAcrossReplicasShareASessionGroup(t *testing.T) {
	f := newRaceFixture(t)
	ctx := context.Background()
	store := newStoreFixture(t)
	gateway := func(st replicaStore, scope string, sibling **pgbackend.Backend) *pgbackend.Backend {
		b, err := pgbackend.New(ctx, pgbackend.Config{Host: f.srv.SocketDir(), Port: f.srv.Port(), AdminUser: f.srv.Superuser(),
			AdminDatabase: f.db, Grants: st, Cuts: st, Now: st.Now, Scope: scope, Siblings: func() []*pgbackend.Backend { return []*pgbackend.Backend{*sibling} }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		return b
	}
	ra, rb := store.open(t), store.open(t)
	var aCluster, aWorkgroup, bCluster, bWorkgroup *pgbackend.Backend
	aCluster, aWorkgroup = gateway(ra, "analytics", &aWorkgroup), gateway(ra, "analytics-wg", &aCluster)
	bCluster, bWorkgroup = gateway(rb, "analytics", &bWorkgroup), gateway(rb, "analytics-wg", &bCluster)
	sweep := func() {
		t.Helper()
		for _, b := range []*pgbackend.Backend{aCluster, aWorkgroup, bCluster, bWorkgroup} {
			if _, err := b.Reconcile(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}

	for _, order := range [][2]*pgbackend.Backend{{aCluster, bWorkgroup}, {bWorkgroup, aCluster}} {
		first, notices := f.prepare(t, order[0], ctx, []string{f.group})
		if len(notices) != 0 || !f.member(t) {
			t.Fatalf("the first session: notices %v, member %v; want the group granted", notices, f.member(t))
		}
		second, notices := f.prepare(t, order[1], ctx, []string{f.group})
		if len(notices) != 0 {
			t.Fatalf("the second session was told %v; want the group shared", notices)
		}
		sweep()
		if !f.member(t) {
			t.Fatal("a sweep revoked the group both sessions hold")
		}
		first.Release(ctx)
		if !f.member(t) {
			t.Fatal("the first session's end revoked the group from the other replica's sibling session")
		}
		sweep()
		if !f.member(t) {
			t.Fatal("a sweep revoked the group from the other replica's sibling session")
		}
		second.Release(ctx)
		if f.member(t) {
			t.Fatalf("the last session's end left the group granted (records %v)", store.owners(t, f.role, f.group))
		}
		sweep()
		if owners := store.owners(t, f.role, f.group); len(owners) != 0 {
			t.Fatalf("records left after both ends and a sweep: %v", owners)
		}
	}
}
