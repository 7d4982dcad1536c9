package pgbackend_test

import (
	"context"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey/pgbackend"
)

// siblingPair is the two gateways of one backend server in one process (a
// cluster and a workgroup, as the example config has them), each the
// other's sibling, wired as serve wires them; replica names the process in
// grants and cuts, and each backend's caches have a clock of their own.
func (f *raceFixture) siblingPair(t *testing.T, grants *sharedGrants, cuts *sharedCuts, replica string, clusterClock, workgroupClock *testClock) (cluster, workgroup *pgbackend.Backend) {
	t.Helper()
	gateway := func(scope string, clock *testClock, sibling **pgbackend.Backend) *pgbackend.Backend {
		b, err := pgbackend.New(context.Background(), pgbackend.Config{Host: f.srv.SocketDir(), Port: f.srv.Port(), AdminUser: f.srv.Superuser(),
			AdminDatabase: f.db, Grants: grantView{grants, replica}, Cuts: cutView{cuts, replica}, Scope: scope,
			Siblings: func() []*pgbackend.Backend { return []*pgbackend.Backend{*sibling} }})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		pgbackend.SetClock(b, clock.now)
		return b
	}
	cluster = gateway("analytics", clusterClock, &workgroup)
	workgroup = gateway("analytics-wg", workgroupClock, &cluster)
	return cluster, workgroup
}

// A role's membership is the server's, whichever gateway on it granted it:
// a session through the workgroup's gateway shares the group the cluster
// gateway's session holds, and may have run SET ROLE to it. When the
// cluster's gateway finds the group unsafe and revokes it, the workgroup
// gateway's sessions of the role are ended as the cluster's are (they
// kept acting as the group), whether or not they asked for it; and the
// workgroup's gateway takes the verdict for its own, instead of granting
// the group again to its next session on a verdict it read before.
func TestAGroupCutEndsTheRolesSessionsOnSiblingGateways(t *testing.T) {
	f := newRaceFixture(t)
	ctx := context.Background()
	grants, cuts := newCutStores()
	var clusterClock, workgroupClock testClock
	cluster, workgroup := f.siblingPair(t, grants, cuts, "a", &clusterClock, &workgroupClock)

	var holder, sharer, plain, asked cutLog
	holder.hear(f.lease(t, cluster, ctx, []string{f.group}))
	sharer.hear(f.lease(t, workgroup, ctx, []string{f.group}))
	plain.hear(f.lease(t, workgroup, ctx, nil))
	if !f.member(t) {
		t.Fatal("the group was not granted")
	}
	f.makeUnsafe(t, false)
	clusterClock.pastCache() // the cluster's gateway looks again; the workgroup's verdict is still fresh
	askedLease := f.lease(t, cluster, ctx, []string{f.group})
	asked.hear(askedLease)
	if !askedLease.Empty() || f.member(t) {
		t.Fatal("the cluster gateway's look did not revoke the group that turned unsafe")
	}
	toldWithin(t, &holder, 0, "the cluster gateway's session holding the group", f.group)
	toldWithin(t, &sharer, time.Second, "the workgroup gateway's session sharing the group", f.group)
	toldWithin(t, &plain, time.Second, "the workgroup gateway's session of the role without the group", f.group)
	if got := asked.heard(); len(got) != 0 {
		t.Errorf("the session whose login found the group unsafe was told %q", got)
	}

	next, notices := f.prepare(t, workgroup, ctx, []string{f.group})
	if !next.Empty() || f.member(t) {
		t.Fatalf("the workgroup's gateway granted the group again on its older verdict (lease empty: %v, member: %v, notices %v)", next.Empty(), f.member(t), notices)
	}
}

// The same across replicas: replica A serves the cluster, replica B both
// gateways of the server. A's cut is recorded under the cluster's scope;
// B's session of the role through the workgroup's gateway may have run
// SET ROLE to the group all the same, and is ended within a second, as its
// session through the cluster's gateway is. A session of a role of the
// same name on another server is not.
func TestAGroupCutEndsTheRolesSessionsOnSiblingGatewaysOfOtherReplicas(t *testing.T) {
	f := newRaceFixture(t)
	ctx := context.Background()
	grants, cuts := newCutStores()
	var clock testClock
	a := f.cutReplica(t, grants, cuts, "a", "analytics", nil, &clock)
	bCluster, bWorkgroup := f.siblingPair(t, grants, cuts, "b", &clock, &clock)
	bElsewhere := f.cutReplica(t, grants, cuts, "b", "other", nil, &clock)
	cuts.feeds["a"], cuts.feeds["b"] = runFeed(t, a), runFeed(t, bCluster, bWorkgroup, bElsewhere)

	var holder, onBCluster, onBWorkgroup, elsewhere cutLog
	holder.hear(f.lease(t, a, ctx, []string{f.group}))
	onBCluster.hear(f.lease(t, bCluster, ctx, nil))
	onBWorkgroup.hear(f.lease(t, bWorkgroup, ctx, nil))
	elsewhere.hear(f.lease(t, bElsewhere, ctx, nil))
	f.makeUnsafe(t, false)
	clock.pastCache()
	before := time.Now()
	if l := f.lease(t, a, ctx, []string{f.group}); !l.Empty() || f.member(t) {
		t.Fatal("replica A's look did not revoke the group that turned unsafe")
	}
	toldWithin(t, &holder, 0, "replica A's session holding the group", f.group)
	toldWithin(t, &onBCluster, time.Second-time.Since(before), "replica B's session through the cluster's gateway", f.group)
	toldWithin(t, &onBWorkgroup, time.Second-time.Since(before), "replica B's session through the workgroup's gateway", f.group)
	if got := elsewhere.heard(); len(got) != 0 {
		t.Errorf("a session of a role of the same name on another server was told %q", got)
	}
}

// A login of the role through the workgroup's gateway is under way (it
// asks for another group, and is held once it recorded its grant) while
// the cluster's gateway revokes the group that turned unsafe: none of the
// workgroup's sessions is live to end, but the login began before the cut
// (its backend connection may have been made before the REVOKE), and is
// ended as it goes live, as a login under way as another replica's cut is
// heard.
func TestALoginUnderWayThroughASiblingGatewayAsAGroupCutIsMadeIsEnded(t *testing.T) {
	f := newRaceFixture(t)
	ctx := context.Background()
	grants, cuts := newCutStores()
	var clusterClock, workgroupClock testClock
	cluster, workgroup := f.siblingPair(t, grants, cuts, "a", &clusterClock, &workgroupClock)
	other := f.newGroup(t, "_other")

	f.lease(t, cluster, ctx, []string{f.group})
	f.makeUnsafe(t, false)
	clusterClock.pastCache()
	resume := f.loginHeldOnceRecorded(t, grants, workgroup, other)
	if l := f.lease(t, cluster, ctx, []string{f.group}); !l.Empty() || f.member(t) {
		t.Fatal("the cluster gateway's look did not revoke the group that turned unsafe")
	}
	var told cutLog
	told.hear(resume())
	toldWithin(t, &told, 0, "the workgroup gateway's session whose login was under way as the cut was made", f.group)
}
