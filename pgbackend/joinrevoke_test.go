package pgbackend_test

import (
	"context"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey/pgbackend"
)

// A session on replica A asks for a group at the moment replica B, whose
// last session of the role just ended, is revoking that membership (its
// record already gone, its REVOKE not yet committed). A found the
// membership, took it for the role's own ("already a member"), and its
// session lost the group when B's REVOKE committed. Now every replica
// judges and changes a membership under one lock on the backend, so A
// looks only once B is done, and grants it.
func TestPrepareWhileAnotherReplicaRevokesIt(t *testing.T) {
	f := newRaceFixture(t)
	shared := &sharedGrants{records: map[[3]string]bool{}}
	a, b := f.replica(t, shared, "a"), f.replica(t, shared, "b")
	ctx := context.Background()
	onB, _, err := b.Prepare(ctx, f.role, false, []string{f.group})
	if err != nil {
		t.Fatal(err)
	}
	if onB.Empty() {
		t.Fatal("B's session holds no group")
	}
	// B's REVOKE waits behind an uncommitted REVOKE of the same row, which
	// is rolled back below: B's then deletes the membership.
	other := f.uncommittedRevoke(t)
	released := make(chan struct{})
	go func() { defer close(released); onB.Release(ctx) }()
	watch := f.conn(t)
	waiting := func(event string) int { return f.lockWaits(t, watch, event) }
	for deadline := time.Now().Add(10 * time.Second); waiting("transactionid") == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("B's REVOKE never waited")
		}
	}
	var (
		onA     *pgbackend.Lease
		notices []pgbackend.Notice
	)
	prepared := make(chan error, 1)
	go func() {
		var err error
		onA, notices, err = a.Prepare(ctx, f.role, false, []string{f.group})
		prepared <- err
	}()
	// A either decides at once (finding the membership B is revoking) or
	// waits for B's lock.
	var early error
	decided := false
	for deadline := time.Now().Add(10 * time.Second); !decided && waiting("advisory") == 0; time.Sleep(5 * time.Millisecond) {
		select {
		case early = <-prepared:
			decided = true
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("A's Prepare neither returned nor waited")
		}
	}
	if err := other.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	<-released
	if !decided {
		early = <-prepared
	}
	if early != nil {
		t.Fatal(early)
	}
	if onA.Empty() || len(notices) != 0 || !f.member(t) {
		t.Fatalf("A's session holds the group: %v, notices %v, member after B's revoke: %v; want it held and granted", !onA.Empty(), notices, f.member(t))
	}
	onA.Release(ctx)
	if f.member(t) {
		t.Fatal("the membership outlived A's session")
	}
}
