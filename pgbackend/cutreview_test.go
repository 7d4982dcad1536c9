package pgbackend_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/pgbackend"
)

// A replica that judged the group safe a moment ago (its verdict is reused
// for OutlivesFor) hears that another replica revoked it as it turned
// unsafe. A new session of the role there asked for the group, and the
// replica granted it again on its stale verdict: the membership the cut
// removed was back, for every session of the role on every replica, until
// a later look. The cut is a verdict younger than its own.
func TestAHeardGroupCutIsNotUndoneByAStaleVerdict(t *testing.T) {
	f := newRaceFixture(t)
	ctx := context.Background()
	grants, cuts := newCutStores()
	var clockA testClock
	a := f.cutReplica(t, grants, cuts, "a", "race", nil, &clockA)
	b := f.cutReplica(t, grants, cuts, "b", "race", nil, &clockA)
	// B's caches do not age in this test: what it judged it keeps,
	// however slow the machine.
	frozen := time.Now()
	pgbackend.SetClock(b, func() time.Time { return frozen })
	cuts.feeds["b"] = runFeed(t, b)

	f.lease(t, a, ctx, []string{f.group})
	// B judges the group safe: its session shares A's membership, and
	// leaves it to A's session.
	shared := f.lease(t, b, ctx, []string{f.group})
	if shared.Empty() {
		t.Fatal("B's session did not share the group")
	}
	shared.Release(ctx)
	if !f.member(t) {
		t.Fatal("B's release revoked the membership A's session holds")
	}
	var onB cutLog
	onB.hear(f.lease(t, b, ctx, nil))

	f.makeUnsafe(t, false)
	clockA.pastCache()
	f.lease(t, a, ctx, []string{f.group})
	if f.member(t) {
		t.Fatal("A's look did not revoke the group that turned unsafe")
	}
	toldWithin(t, &onB, 5*time.Second, "B's session of the role", f.group)

	l, notices := f.prepare(t, b, ctx, []string{f.group})
	if f.member(t) || !l.Empty() {
		t.Fatalf("B granted the group again after it heard of the cut (notices %v)", notices)
	}
	if len(notices) != 1 || !strings.Contains(notices[0].Message, "create in a schema") {
		t.Errorf("notices %v, want one saying why the group was not joined", notices)
	}
}

// hangingCuts is a replica's view of the shared cuts whose first read
// hangs until its context is done: a store connection that stopped
// answering (a failover, a network partition that drops packets).
type hangingCuts struct {
	cutView
	once *sync.Once
	hung chan struct{}
}

func (h hangingCuts) GroupCuts(ctx context.Context, scope, role string, since time.Time) ([]shiftkey.GroupCut, error) {
	first := false
	h.once.Do(func() { first = true })
	if first {
		close(h.hung)
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return h.cutView.GroupCuts(ctx, scope, role, since)
}

// A read of the cuts that hangs (a store connection that stopped
// answering) held the feed's one worker: every cut heard after it waited
// for that read, however long the connection took to fail (TCP's
// retransmissions: many minutes), and the sessions it should have ended
// went on meanwhile. A read is bounded now; the next round reads again.
func TestAHungReadOfTheCutsDoesNotHoldTheNextCuts(t *testing.T) {
	pgbackend.SetCutReadTimeout(t, 200*time.Millisecond)
	f := newRaceFixture(t)
	ctx := context.Background()
	grants, cuts := newCutStores()
	var clock testClock
	a := f.cutReplica(t, grants, cuts, "a", "race", nil, &clock)
	hung := make(chan struct{})
	b, err := pgbackend.New(ctx, pgbackend.Config{Host: f.srv.SocketDir(), Port: f.srv.Port(), AdminUser: f.srv.Superuser(),
		AdminDatabase: f.db, Grants: grantView{grants, "b"}, Cuts: hangingCuts{cutView{cuts, "b"}, &sync.Once{}, hung}, Scope: "race"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	pgbackend.SetClock(b, clock.now)
	feedB := runFeed(t, b)

	f.lease(t, a, ctx, []string{f.group})
	var onB cutLog
	onB.hear(f.lease(t, b, ctx, nil))
	// The feed is lost and regained: B reads every cut, and the read hangs.
	feedB.Changed(shiftkey.Change{})
	<-hung
	cuts.feeds["b"] = feedB
	f.makeUnsafe(t, false)
	clock.pastCache()
	f.lease(t, a, ctx, []string{f.group})
	if f.member(t) {
		t.Fatal("A's look did not revoke the group that turned unsafe")
	}
	toldWithin(t, &onB, 10*time.Second, "B's session of the role, its cut heard while a read hung", f.group)
}

// failingCuts is a replica's view of the shared cuts whose records fail
// while down is set: the store is unreachable for a moment.
type failingCuts struct {
	cutView
	down *atomic.Bool
}

func (v failingCuts) RecordGroupCut(ctx context.Context, c shiftkey.GroupCut) error {
	if v.down.Load() {
		return errors.New("store unreachable")
	}
	return v.cutView.RecordGroupCut(ctx, c)
}

// The store was unreachable for the moment a replica revoked a group that
// turned unsafe: the cut was logged as not recorded and forgotten, and the
// other replica's session of the role, which may have run SET ROLE to the
// group, went on for good (no session of that replica held the group, so
// none of its own looks would find it). The cut is recorded at the
// revoking replica's next sweep once the store answers again.
func TestAGroupCutTheStoreMissedIsRecordedAtTheNextSweep(t *testing.T) {
	f := newRaceFixture(t)
	ctx := context.Background()
	grants, cuts := newCutStores()
	var clock testClock
	var down atomic.Bool
	a, err := pgbackend.New(ctx, pgbackend.Config{Host: f.srv.SocketDir(), Port: f.srv.Port(), AdminUser: f.srv.Superuser(),
		AdminDatabase: f.db, Grants: grantView{grants, "a"}, Cuts: failingCuts{cutView{cuts, "a"}, &down}, Scope: "race"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	pgbackend.SetClock(a, clock.now)
	b := f.cutReplica(t, grants, cuts, "b", "race", nil, &clock)
	cuts.feeds["b"] = runFeed(t, b)

	f.lease(t, a, ctx, []string{f.group})
	var onB cutLog
	onB.hear(f.lease(t, b, ctx, nil))
	f.makeUnsafe(t, false)
	clock.pastCache()
	down.Store(true)
	f.lease(t, a, ctx, []string{f.group})
	if f.member(t) {
		t.Fatal("A's look did not revoke the group that turned unsafe")
	}
	revoked := time.Now()
	// A session on B that logs in over a second after the revoke (the
	// membership was gone): the late record must not end it.
	for time.Since(revoked) < 1500*time.Millisecond {
		time.Sleep(50 * time.Millisecond)
	}
	var later cutLog
	later.hear(f.lease(t, b, ctx, nil))
	for time.Since(revoked) < 3*time.Second {
		time.Sleep(50 * time.Millisecond)
	}
	down.Store(false)
	if _, err := a.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	toldWithin(t, &onB, 5*time.Second, "B's session of the role, after A's sweep with the store back", f.group)
	if got := later.heard(); len(got) != 0 {
		t.Errorf("B's session that logged in 1.5 s after the revoke was told %q by the cut recorded 3 s after it", got)
	}
}

// downCuts is a replica's view of the shared cuts that fails every read
// while down is set, counting the reads.
type downCuts struct {
	cutView
	down  *atomic.Bool
	reads *atomic.Int64
}

func (v downCuts) GroupCuts(ctx context.Context, scope, role string, since time.Time) ([]shiftkey.GroupCut, error) {
	v.reads.Add(1)
	if v.down.Load() {
		return nil, errors.New("store unreachable")
	}
	return v.cutView.GroupCuts(ctx, scope, role, since)
}

// While the store is unreachable, the feed reads the cuts at each change
// and, with sessions live, every 200 ms: each failure was a warning, five
// a second for each cluster, as long as the outage lasted. A cluster's
// reads failing is told once, and their working again once.
func TestFailingReadsOfTheCutsAreToldOncePerOutage(t *testing.T) {
	f := newRaceFixture(t)
	ctx := context.Background()
	_, cuts := newCutStores()
	var down atomic.Bool
	var reads atomic.Int64
	b, err := pgbackend.New(ctx, pgbackend.Config{Host: f.srv.SocketDir(), Port: f.srv.Port(), AdminUser: f.srv.Superuser(),
		AdminDatabase: f.db, Cuts: downCuts{cutView{cuts, "b"}, &down, &reads}, Scope: "race"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	var logs lockedBuffer
	feed := &pgbackend.CutFeed{Backends: func() []*pgbackend.Backend { return []*pgbackend.Backend{b} },
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); feed.Run(runCtx) }()
	t.Cleanup(func() { cancel(); <-done })

	// One round per change, waited for: its log is written before the
	// next round reads.
	round := func() {
		t.Helper()
		n := reads.Load()
		feed.Changed(shiftkey.Change{Kind: shiftkey.KindGroupCut, Name: "race\x00" + f.role})
		for end := time.Now().Add(10 * time.Second); reads.Load() == n; time.Sleep(time.Millisecond) {
			if time.Now().After(end) {
				t.Fatal("the feed did not read the cuts")
			}
		}
	}
	down.Store(true)
	for range 10 {
		round()
	}
	down.Store(false)
	round()
	down.Store(true)
	round()
	round() // its read follows the log of the one before
	logs.mu.Lock()
	out := logs.b.String()
	logs.mu.Unlock()
	if n := strings.Count(out, "level=WARN"); n != 2 {
		t.Errorf("%d warnings for two outages, want 2:\n%s", n, out)
	}
	if n := strings.Count(out, "level=INFO"); n != 1 {
		t.Errorf("%d notes of the reads working again, want 1:\n%s", n, out)
	}
}

// As TestALoginUnderWayAsAGroupCutIsHeardIsEnded, but the cut reaches the
// replica by no change of its own: its feed was lost and regained, or the
// recheck's round (which stands for every role) took the change's place.
// With no session live yet, that round read nothing, so the login was
// not ended as it became a session, only at a recheck 10 s later; and
// the replica kept its older verdict on the group meanwhile.
func TestALoginUnderWayAsTheFeedIsRegainedIsEnded(t *testing.T) {
	loginUnderWayAsCutsAreRead(t, false, "the session whose login was under way as the feed was regained")
}

// A login of a role that did not exist when its Prepare looked (a
// credential without AutoCreate) fails at the backend, unless the role is
// created meanwhile (another login of the same DbUser with AutoCreate):
// then the session runs as the role, and was not among its live sessions,
// so no cut ended it, however long it ran as a group it SET ROLE to.
func TestASessionWhoseRoleWasCreatedDuringItsLoginIsEndedByACut(t *testing.T) {
	f := newRaceFixture(t)
	ctx := context.Background()
	grants, cuts := newCutStores()
	var clock testClock
	a := f.cutReplica(t, grants, cuts, "a", "race", nil, &clock)
	b := f.cutReplica(t, grants, cuts, "b", "race", nil, &clock)
	cuts.feeds["b"] = runFeed(t, b)
	late := f.role + "_late"
	early, _, err := b.Prepare(ctx, late, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { early.Release(ctx) })
	var told cutLog
	told.hear(early)
	// Created (by another login's AutoCreate) before this one's backend
	// login, which then succeeds.
	if _, err := f.admin.Exec(ctx, "CREATE ROLE "+late+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.admin.Exec(context.Background(), "DROP ROLE IF EXISTS "+late) })
	withGroup, _, err := a.Prepare(ctx, late, false, []string{f.group})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { withGroup.Release(ctx) })
	if withGroup.Empty() {
		t.Fatal("the group was not granted")
	}
	f.makeUnsafe(t, false)
	clock.pastCache()
	revoking, _, err := a.Prepare(ctx, late, false, []string{f.group})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { revoking.Release(ctx) })
	if f.memberOf(t, late) {
		t.Fatal("A's look did not revoke the group that turned unsafe")
	}
	toldWithin(t, &told, 5*time.Second, "B's session whose role was created during its login", f.group)
}

// memberOf reports whether role belongs to f's group.
func (f *raceFixture) memberOf(t *testing.T, role string) bool {
	t.Helper()
	return pgtest.Member(t, f.admin, role, f.group)
}
