package postgres_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/postgres"
)

// offClock is a machine clock off by *off from the real one.
func offClock(off *atomic.Int64) postgres.Option {
	return postgres.WithLocalClock(func() time.Time { return time.Now().Add(time.Duration(off.Load())) })
}

// within fails the test unless d's time is the store's (this machine's,
// the test server's) give or take a second.
func within(t *testing.T, name string, d *postgres.DB) {
	t.Helper()
	if off := d.Now().Sub(time.Now()); off > time.Second || off < -time.Second {
		t.Errorf("%s replica's time is %v off the store's", name, off)
	}
}

// Replicas whose clocks are 20 minutes off each way agree with the store,
// and so on which credentials are live: one a replica issued expiring in
// ten minutes is not refused by the fast one, one expired ten minutes ago
// is not taken by the slow one.
func TestReplicaClocksJudgeByStore(t *testing.T) {
	url := newURL(t)
	var fastOff, slowOff atomic.Int64
	fastOff.Store(int64(20 * time.Minute))
	slowOff.Store(int64(-20 * time.Minute))
	honest := open(t, url)
	fast, slow := open(t, url, offClock(&fastOff)), open(t, url, offClock(&slowOff))
	for name, d := range map[string]*postgres.DB{"honest": honest, "fast": fast, "slow": slow} {
		within(t, name, d)
	}
	now := honest.Now()
	issue(t, honest, "live", "IAM:kim", now.Add(-50*time.Minute)) // expires in 10 min
	issue(t, honest, "gone", "IAM:kim", now.Add(-70*time.Minute)) // expired 10 min ago
	for name, d := range map[string]*postgres.DB{"fast": fast, "slow": slow} {
		if got := liveIDs(t, d, "IAM:kim", d.Now()); !slices.Equal(got, []string{"live"}) {
			t.Errorf("%s replica: live credentials %v, want [live]", name, got)
		}
	}
}

// A machine clock stepped back or forward 5 minutes while the store is
// open (NTP) moves nothing: the store's time goes on from the last
// measure by elapsed (monotonic) time. Before the step Now is the
// machine's clock, after it the store's as last measured, which is known
// only to half the measuring round trip (at most 100 ms): the two
// readings may differ by that much either way, never by the step. (An
// assertion that time never went back failed in CI once: "the step made
// -210.072µs pass between two readings", the measure's own error.)
func TestReplicaClockStep(t *testing.T) {
	var off atomic.Int64
	d := open(t, newURL(t), offClock(&off))
	within(t, "unstepped", d)
	a := d.Now()
	off.Store(int64(-5 * time.Minute))
	within(t, "stepped back", d)
	b := d.Now()
	if el := b.Sub(a); el < -100*time.Millisecond || el > time.Second {
		t.Errorf("the step made %v pass between two readings", el)
	}
	off.Store(int64(5 * time.Minute))
	within(t, "stepped forward", d)
}

// Leases are written and judged by the store's now(): a replica whose
// machine clock is 5 minutes fast does not take a live replica's lease
// for run out (and revoke its sessions' groups), nor does one 5 minutes
// slow keep a lapsed one.
func TestLeasesIgnoreMachineClocks(t *testing.T) {
	url := newURL(t)
	ctx := context.Background()
	var fastOff, slowOff atomic.Int64
	fastOff.Store(int64(5 * time.Minute))
	slowOff.Store(int64(-5 * time.Minute))
	lease := postgres.WithGrantLease(3 * time.Second)
	owner := open(t, url, lease)
	fast, slow := open(t, url, lease, offClock(&fastOff)), open(t, url, lease, offClock(&slowOff))
	g := shiftkey.SessionGrant{Scope: "c", Role: "kim", Group: "g"}
	if err := owner.RecordGrant(ctx, g); err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]*postgres.DB{"fast": fast, "slow": slow} {
		held, err := d.GrantHeldElsewhere(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		grants, err := d.Grants(ctx, "c")
		if err != nil {
			t.Fatal(err)
		}
		if !held || len(grants) != 0 {
			t.Errorf("%s replica: a live lease held elsewhere %v, listed to reconcile %v", name, held, grants)
		}
	}
	if _, err := adminConn(t, url).Exec(ctx, `UPDATE session_grants SET lease_until = now() - interval '1 second'`); err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]*postgres.DB{"fast": fast, "slow": slow} {
		lapsed, err := d.GrantLapsedElsewhere(ctx, g)
		if err != nil {
			t.Fatal(err)
		}
		if !lapsed {
			t.Errorf("%s replica: a lapsed lease not seen lapsed", name)
		}
	}
}

// A step of the machine's clock, or its monotonic clock's lag after the
// machine was suspended (which looks the same from here: the two no
// longer move together), makes the replica read the store's clock again
// at once, not at the next lease renewal (a third of the lease): a
// suspended replica's estimate would otherwise lag by the suspension.
func TestReplicaClockStepReadsAgain(t *testing.T) {
	var off atomic.Int64
	d := open(t, newURL(t), offClock(&off), postgres.WithGrantLease(time.Minute))
	d.Now()
	before := postgres.ClockReadings(d)
	time.Sleep(1100 * time.Millisecond) // rechecks are at most one a second
	off.Store(int64(-5 * time.Minute))
	deadline := time.Now().Add(5 * time.Second)
	for postgres.ClockReadings(d) == before {
		if time.Now().After(deadline) {
			t.Fatal("the store's clock was not read again after a step of the machine's")
		}
		d.Now()
		time.Sleep(10 * time.Millisecond)
	}
}
