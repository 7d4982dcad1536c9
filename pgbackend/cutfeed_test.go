package pgbackend_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/pgbackend"
)

// sharedCuts is the group cuts of several replicas in one place, as a
// shared store keeps them, dated by one clock (time.Now); each replica
// sees them through a view with its own name. feeds are the replicas'
// change feeds: a cut is told to every replica's but its own, and to none
// that has none (its feed is lost).
type sharedCuts struct {
	mu    sync.Mutex
	cuts  []recordedCut
	feeds map[string]*pgbackend.CutFeed
}

type recordedCut struct {
	by string
	c  shiftkey.GroupCut
}

type cutView struct {
	s       *sharedCuts
	replica string
}

func (v cutView) RecordGroupCut(_ context.Context, c shiftkey.GroupCut) error {
	c.At, c.Age = time.Now().Add(-c.Age), 0
	v.s.mu.Lock()
	v.s.cuts = append(v.s.cuts, recordedCut{v.replica, c})
	var tell []*pgbackend.CutFeed
	for name, f := range v.s.feeds {
		if name != v.replica && f != nil {
			tell = append(tell, f)
		}
	}
	v.s.mu.Unlock()
	for _, f := range tell {
		f.Changed(shiftkey.Change{Kind: shiftkey.KindGroupCut, Name: c.Scope + "\x00" + c.Role})
	}
	return nil
}

func (v cutView) GroupCuts(_ context.Context, scope, role string, since time.Time) ([]shiftkey.GroupCut, error) {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	var out []shiftkey.GroupCut
	for _, r := range v.s.cuts {
		if r.by != v.replica && r.c.Scope == scope && (role == "" || r.c.Role == role) && !r.c.At.Before(since) {
			out = append(out, r.c)
		}
	}
	return out, nil
}

// cutReplica is a Backend of scope on the fixture's server, in replica
// name: its grant records in grants, its cuts in cuts, its records dated
// by now (nil: time.Now) and its caches by clock.
func (f *raceFixture) cutReplica(t *testing.T, grants *sharedGrants, cuts *sharedCuts, name, scope string, now func() time.Time, clock *testClock) *pgbackend.Backend {
	t.Helper()
	b, err := pgbackend.New(context.Background(), pgbackend.Config{Host: f.srv.SocketDir(), Port: f.srv.Port(), AdminUser: f.srv.Superuser(),
		AdminDatabase: f.db, Grants: grantView{grants, name}, Cuts: cutView{cuts, name}, Scope: scope, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	pgbackend.SetClock(b, clock.now)
	return b
}

// newCutStores are the grant records and cuts replicas share, as their
// PostgreSQL store would hold them.
func newCutStores() (*sharedGrants, *sharedCuts) {
	return &sharedGrants{records: map[[3]string]bool{}}, &sharedCuts{feeds: map[string]*pgbackend.CutFeed{}}
}

// runFeed runs a CutFeed for a replica's backends until the test ends.
func runFeed(t *testing.T, backends ...*pgbackend.Backend) *pgbackend.CutFeed {
	feed := &pgbackend.CutFeed{Backends: func() []*pgbackend.Backend { return backends }}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		feed.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return feed
}

// toldWithin waits up to d for c to have been told once of group, and
// fails the test unless it was, naming why.
func toldWithin(t *testing.T, c *cutLog, d time.Duration, what, group string) {
	t.Helper()
	for end := time.Now().Add(d); len(c.heard()) == 0 && time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
	}
	if got := c.heard(); len(got) != 1 || !strings.HasPrefix(got[0], group+": ") || !strings.Contains(got[0], "create in a schema") {
		t.Fatalf("%s was told %q within %v, want once, naming %s and why", what, got, d, group)
	}
}

// A replica revokes a group that turned unsafe and ends its own sessions
// of the role; another replica, none of whose sessions held the group,
// never looked, and its session of the role, which may have run SET ROLE
// to the group, went on. Now the revoking replica records the cut, the
// other hears of it and ends its session of the role; not its session of
// a role of the same name in another cluster, nor, on the revoking
// replica, the session whose login found the group unsafe.
func TestAGroupCutEndsTheRolesSessionsOnTheOtherReplica(t *testing.T) {
	f := newRaceFixture(t)
	ctx := context.Background()
	grants, cuts := newCutStores()
	var clock testClock
	a := f.cutReplica(t, grants, cuts, "a", "race", nil, &clock)
	b := f.cutReplica(t, grants, cuts, "b", "race", nil, &clock)
	bOther := f.cutReplica(t, grants, cuts, "b", "other", nil, &clock)
	cuts.feeds["a"], cuts.feeds["b"] = runFeed(t, a), runFeed(t, b, bOther)

	var holder, onB, otherCluster, asked cutLog
	holder.hear(f.lease(t, a, ctx, []string{f.group}))
	onB.hear(f.lease(t, b, ctx, nil))
	otherCluster.hear(f.lease(t, bOther, ctx, nil))
	f.makeUnsafe(t, false)
	clock.pastCache()
	before := time.Now()
	askedLease := f.lease(t, a, ctx, []string{f.group})
	asked.hear(askedLease)
	if !askedLease.Empty() || f.member(t) {
		t.Fatal("the replica's look did not revoke the group that turned unsafe")
	}
	toldWithin(t, &holder, 0, "the revoking replica's session holding the group", f.group)
	toldWithin(t, &onB, time.Second-time.Since(before), "the other replica's session of the role", f.group)

	// What the other replica reads again (its sweep's recheck, a feed
	// regained) changes nothing more, nor the revoking replica's reading
	// (its own cut is not its to hear).
	for _, r := range []*pgbackend.Backend{a, b, bOther} {
		if n, err := r.HearCuts(ctx, ""); err != nil || n != 0 {
			t.Fatalf("HearCuts on %s again: %d sessions ended, %v; want none", r.Scope(), n, err)
		}
	}
	if got := otherCluster.heard(); len(got) != 0 {
		t.Errorf("a session of a role of the same name in another cluster was told %q", got)
	}
	if got := asked.heard(); len(got) != 0 {
		t.Errorf("the session whose login found the group unsafe was told %q", got)
	}
	if got := holder.heard(); len(got) != 1 {
		t.Errorf("the holder was told %q, want once", got)
	}
}

// The change feed may be lost and regained (the zero Change): a cut made
// meanwhile reached the replica by no change. At the zero Change it reads
// every cut since its oldest session began and ends the sessions that
// began before one; a session that began after the cut goes on (the
// membership was gone when it logged in).
func TestAGroupCutMissedByTheFeedIsReadWhenTheFeedIsBack(t *testing.T) {
	f := newRaceFixture(t)
	ctx := context.Background()
	grants, cuts := newCutStores()
	var clock, bClock testClock
	a := f.cutReplica(t, grants, cuts, "a", "race", nil, &clock)
	b := f.cutReplica(t, grants, cuts, "b", "race", bClock.now, &clock)
	feedB := runFeed(t, b) // not in cuts.feeds: lost

	var onB, later cutLog
	f.lease(t, a, ctx, []string{f.group})
	onB.hear(f.lease(t, b, ctx, nil))
	f.makeUnsafe(t, false)
	clock.pastCache()
	f.lease(t, a, ctx, []string{f.group})
	if f.member(t) {
		t.Fatal("the replica's look did not revoke the group that turned unsafe")
	}
	// A session on B that logs in after the cut, by more than the clocks
	// may disagree.
	bClock.off.Add(int64(2 * time.Second))
	later.hear(f.lease(t, b, ctx, nil))
	if got := onB.heard(); len(got) != 0 {
		t.Fatalf("told %q with no change to hear of the cut by", got)
	}
	feedB.Changed(shiftkey.Change{})
	toldWithin(t, &onB, time.Second, "the session of the role that began before the cut the feed missed", f.group)
	if got := later.heard(); len(got) != 0 {
		t.Errorf("the session that began after the cut was told %q", got)
	}
}

// A login of the role under way on the other replica as the cut is heard
// is not among the live sessions then: it is ended as it becomes one. Its
// login began before the cut, and its backend connection may have been
// made before the REVOKE.
func TestALoginUnderWayAsAGroupCutIsHeardIsEnded(t *testing.T) {
	loginUnderWayAsCutsAreRead(t, true, "the session whose login was under way as the cut was heard")
}

// loginUnderWayAsCutsAreRead holds replica B's login of the role (asking
// for another group) once it recorded its grant, while replica A revokes
// the group that turned unsafe; B then reads the cuts, of the role
// (named: as the feed tells of the cut) or of every role (as when its
// feed is back), with no session live, and the login, let go, must be
// ended (what names it).
func loginUnderWayAsCutsAreRead(t *testing.T, named bool, what string) {
	t.Helper()
	f := newRaceFixture(t)
	ctx := context.Background()
	grants, cuts := newCutStores()
	var clock testClock
	a := f.cutReplica(t, grants, cuts, "a", "race", nil, &clock)
	b := f.cutReplica(t, grants, cuts, "b", "race", nil, &clock)
	other := f.newGroup(t, "_other")

	f.lease(t, a, ctx, []string{f.group})
	f.makeUnsafe(t, false)
	clock.pastCache()
	// B's login asks for another group, and is held once it recorded its
	// grant, while A revokes the first group.
	resume := f.loginHeldOnceRecorded(t, grants, b, other)
	f.lease(t, a, ctx, []string{f.group})
	if f.member(t) {
		t.Fatal("the replica's look did not revoke the group that turned unsafe")
	}
	role := ""
	if named {
		role = f.role
	}
	if n, err := b.HearCuts(ctx, role); err != nil || n != 0 {
		t.Fatalf("HearCuts: %d, %v; want none ended (none live yet)", n, err)
	}
	var told cutLog
	told.hear(resume())
	toldWithin(t, &told, 0, what, f.group)
}

// loginHeldOnceRecorded starts a session of f's role through b asking for
// group, and holds its login once it recorded its grant (in grants, the
// first record from now on). The login goes on when resume is called,
// which returns its lease (released when the test ends).
func (f *raceFixture) loginHeldOnceRecorded(t *testing.T, grants *sharedGrants, b *pgbackend.Backend, group string) (resume func() *pgbackend.Lease) {
	t.Helper()
	recorded, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	grants.recorded = func() {
		once.Do(func() {
			close(recorded)
			<-release
		})
	}
	type prepared struct {
		l   *pgbackend.Lease
		err error
	}
	got := make(chan prepared, 1)
	go func() {
		l, _, err := b.Prepare(context.Background(), f.role, false, []string{group})
		got <- prepared{l, err}
	}()
	<-recorded
	return func() *pgbackend.Lease {
		t.Helper()
		close(release)
		p := <-got
		if p.err != nil {
			t.Fatal(p.err)
		}
		t.Cleanup(func() { p.l.Release(context.Background()) })
		return p.l
	}
}

// A replica whose new session finds unsafe a membership another replica
// granted (none of its own sessions held it) revokes it: its own sessions
// of the role that did not ask for the group could have run SET ROLE to
// it as well, and are ended as the holder's replica ends its own; the
// session whose login found it unsafe is not. Before, only the sessions
// of a replica that held the group through its own grant were ended.
func TestARevokeOfAnotherReplicasGrantEndsThisReplicasSessions(t *testing.T) {
	f := newRaceFixture(t)
	ctx := context.Background()
	grants := &sharedGrants{records: map[[3]string]bool{}}
	var obsA, obsB changes
	var clock testClock
	a, b := f.observedReplica(t, grants, "a", &obsA, &clock), f.observedReplica(t, grants, "b", &obsB, &clock)
	f.lease(t, a, ctx, []string{f.group})
	var onB, asked cutLog
	onB.hear(f.lease(t, b, ctx, nil))
	f.makeUnsafe(t, false)
	clock.pastCache()
	l := f.lease(t, b, ctx, []string{f.group})
	asked.hear(l)
	if !l.Empty() || f.member(t) || len(unsafeRevokes(&obsB)) != 1 {
		t.Fatal("the replica did not revoke the other replica's grant of the group that turned unsafe")
	}
	toldWithin(t, &onB, 0, "the revoking replica's session of the role without the group", f.group)
	if got := asked.heard(); len(got) != 0 {
		t.Errorf("the session whose login found the group unsafe was told %q", got)
	}
}
