package pgbackend_test

import (
	"context"
	"testing"

	"github.com/shiftkey/shiftkey/pgbackend"
)

// heldIs fails the test unless each replica's GrantsHeld is the matching want.
func heldIs(t *testing.T, when string, replicas []*pgbackend.Backend, want ...int) {
	t.Helper()
	for i, b := range replicas {
		if got := b.GrantsHeld(); got != want[i] {
			t.Errorf("%s: replica %d holds %d memberships, want %d", when, i, got, want[i])
		}
	}
}

// One replica, two sessions sharing a group: one membership held while
// either lives, none after.
func TestGrantsHeldOneReplica(t *testing.T) {
	f := newRaceFixture(t)
	ctx := context.Background()
	shared := &sharedGrants{records: map[[3]string]bool{}}
	b := []*pgbackend.Backend{f.replica(t, shared, "a")}
	l1, _, err := b[0].Prepare(ctx, f.role, false, []string{f.group})
	if err != nil {
		t.Fatal(err)
	}
	l2, _, err := b[0].Prepare(ctx, f.role, false, []string{f.group})
	if err != nil {
		t.Fatal(err)
	}
	heldIs(t, "two sessions", b, 1)
	l1.Release(ctx)
	heldIs(t, "one session left", b, 1)
	l2.Release(ctx)
	heldIs(t, "no session left", b, 0)
}

// Two replicas whose sessions share one membership: the second joins the
// membership the first granted (joinShared). Each holds it for its
// sessions, and neither count goes below zero as they end, in either
// order. The joining replica's count was never raised but was lowered at
// its release: -1 per shared membership, the negative gauge seen after a
// load run on two replicas.
func TestGrantsHeldSharedWithAnotherReplica(t *testing.T) {
	for _, firstOut := range []int{0, 1} {
		f := newRaceFixture(t)
		ctx := context.Background()
		shared := &sharedGrants{records: map[[3]string]bool{}}
		replicas := []*pgbackend.Backend{f.replica(t, shared, "a"), f.replica(t, shared, "b")}
		var leases []*pgbackend.Lease
		for _, b := range replicas {
			l, notices, err := b.Prepare(ctx, f.role, false, []string{f.group})
			if err != nil {
				t.Fatal(err)
			}
			if len(notices) != 0 || l.Empty() {
				t.Fatalf("the group was not shared: notices %v", notices)
			}
			leases = append(leases, l)
		}
		heldIs(t, "both replicas' sessions", replicas, 1, 1)
		leases[firstOut].Release(ctx)
		want := []int{1, 1}
		want[firstOut] = 0
		heldIs(t, "one replica's session left", replicas, want...)
		if !f.member(t) {
			t.Fatal("the group went while a session still holds it")
		}
		leases[1-firstOut].Release(ctx)
		heldIs(t, "no session left", replicas, 0, 0)
		if f.member(t) {
			t.Fatal("the group stayed granted after both sessions ended")
		}
	}
}
