package pgbackend_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/pgbackend"
	"github.com/shiftkey/shiftkey/postgres"
)

// storeFixture is a PostgreSQL store replicas share, in a database of its
// own on the shared test server (beside the backend's).
type storeFixture struct {
	url, name string
	admin     *pgx.Conn // to the store's database, to read its records
}

func newStoreFixture(t *testing.T) *storeFixture {
	t.Helper()
	srv := pgtest.Server(t)
	name := pgtest.NewDatabase(t)
	s := &storeFixture{url: srv.ConnString(srv.Superuser(), name), name: name}
	ctx := context.Background()
	c, err := pgx.Connect(ctx, s.url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(ctx) })
	s.admin = c
	return s
}

// open is one replica's connection to the store (its own origin).
func (s *storeFixture) open(t *testing.T, opts ...postgres.Option) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), s.url, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// owners lists the replicas (store origins) recording role's membership
// of group.
func (s *storeFixture) owners(t *testing.T, role, group string) []string {
	t.Helper()
	rows, err := s.admin.Query(context.Background(), `SELECT owner FROM session_grants WHERE role = $1 AND grp = $2 ORDER BY owner`, role, group)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// replicaStore is what serve gives a Backend of a shared PostgreSQL
// store: a *postgres.DB, or one with test hooks (hookedGrants).
type replicaStore interface {
	shiftkey.GrantStore
	shiftkey.GroupCutStore
	Now() time.Time
}

// storeReplica is a Backend on f's server keeping its grant records in
// store, as serve does with a shared PostgreSQL store.
func (f *raceFixture) storeReplica(t *testing.T, store replicaStore) *pgbackend.Backend {
	t.Helper()
	b, err := pgbackend.New(context.Background(), pgbackend.Config{Host: f.srv.SocketDir(), Port: f.srv.Port(), AdminUser: f.srv.Superuser(),
		AdminDatabase: f.db, Grants: store, Cuts: store, Scope: "race", Now: store.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// grantsReplica is a Backend on f's server keeping its grant records in
// grants (a store, or one with test hooks), without cut announcements.
func (f *raceFixture) grantsReplica(t *testing.T, grants shiftkey.GrantStore) *pgbackend.Backend {
	t.Helper()
	b, err := pgbackend.New(context.Background(), pgbackend.Config{Host: f.srv.SocketDir(), Port: f.srv.Port(), AdminUser: f.srv.Superuser(),
		AdminDatabase: f.db, Grants: grants, Scope: "race"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// waitUntil polls cond until it holds, failing the test after 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
	}
}

// prepareDuring starts b.Prepare of f's group and returns its outcome
// once it has decided at once or waits for the membership's lock (the
// other replica holds it), after which proceed is called to let the
// other replica finish.
func (f *raceFixture) prepareDuring(t *testing.T, b *pgbackend.Backend, proceed func()) (*pgbackend.Lease, []pgbackend.Notice) {
	t.Helper()
	ctx := context.Background()
	type outcome struct {
		l       *pgbackend.Lease
		notices []pgbackend.Notice
		err     error
	}
	done := make(chan outcome, 1)
	go func() {
		l, notices, err := b.Prepare(ctx, f.role, false, []string{f.group})
		done <- outcome{l, notices, err}
	}()
	watch := f.conn(t)
	var got *outcome
	waitUntil(t, "the login neither decided nor waited for the membership's lock", func() bool {
		select {
		case o := <-done:
			got = &o
			return true
		default:
			return f.lockWaits(t, watch, "advisory") > 0
		}
	})
	proceed()
	if got == nil {
		o := <-done
		got = &o
	}
	if got.err != nil {
		t.Fatal(got.err)
	}
	t.Cleanup(func() { got.l.Release(context.Background()) })
	return got.l, got.notices
}

// The check-then-act of a release across replicas sharing a PostgreSQL
// store: replica A's last session of the role ends, A finds no other
// replica holding the membership (GrantHeldElsewhere) and revokes it; its
// REVOKE is held, uncommitted, between that check and its commit, and
// replica B's new session asks for the group right then. B judges the
// membership only under the lock A holds on the backend (lockMembership,
// an advisory lock in the backend's database, taken around both the
// check and the act on either side), so it finds the membership gone
// once A is done, and grants it. Without the lock (tried), B found the
// membership A was revoking and asked the store who holds it; held there
// (hookedGrants.asked) until A's release was done, it found no record
// left, took the membership for the role's own ("already a member"), and
// its session went on without the group.
func TestJoinWhileAnotherReplicaRevokesWithPostgresStore(t *testing.T) {
	f := newRaceFixture(t)
	store := newStoreFixture(t)
	ctx := context.Background()
	storeA, storeB := store.open(t), &hookedGrants{DB: store.open(t)}
	a, b := f.storeReplica(t, storeA), f.storeReplica(t, storeB)

	onA := f.lease(t, a, ctx, []string{f.group})
	if onA.Empty() || !f.member(t) {
		t.Fatal("A's session holds no group")
	}
	other := f.uncommittedRevoke(t)
	released := make(chan struct{})
	go func() { defer close(released); onA.Release(ctx) }()
	watch := f.conn(t)
	waitUntil(t, "A's REVOKE waits", func() bool { return f.lockWaits(t, watch, "transactionid") > 0 })

	// A's REVOKE commits and its release ends: once B waits for A's lock,
	// or, were there no lock, as B asks the store who holds what it found.
	finishA := sync.OnceFunc(func() {
		if err := other.Rollback(ctx); err != nil {
			t.Error(err)
		}
		<-released
	})
	storeB.asked = finishA
	onB, notices := f.prepareDuring(t, b, finishA)
	if onB.Empty() || len(notices) != 0 || !f.member(t) {
		t.Fatalf("B's session holds the group: %v, notices %v, member after A's revoke: %v; want it held and granted", !onB.Empty(), notices, f.member(t))
	}
	if owners := store.owners(t, f.role, f.group); !slices.Equal(owners, []string{storeB.Origin()}) {
		t.Fatalf("records %v, want B's alone", owners)
	}
	onB.Release(ctx)
	if f.member(t) {
		t.Fatal("the membership outlived B's session")
	}
	if owners := store.owners(t, f.role, f.group); len(owners) != 0 {
		t.Fatalf("records %v left after every session ended", owners)
	}
}

// The lease-expiry path: replica C granted a group for a session and died
// (its store closed, no release); once C's lease on the record ran out,
// replica A's sweep (Reconcile) revokes the membership C left. A's REVOKE
// is held, uncommitted, after A found no live holder and no session of
// the role, and live replica B's new session asks for the group right
// then. B waits for A's lock, finds the membership gone and grants it
// anew. Without the lock (tried: B decided at once), B shared C's lapsed
// membership (joinShared: its record and no GRANT), A's REVOKE then
// committed, and B's session held a group the role no longer had.
func TestReconcileOfALapsedGrantWhileAnotherReplicaJoins(t *testing.T) {
	f := newRaceFixture(t)
	store := newStoreFixture(t)
	ctx := context.Background()
	// C is closed below, not at cleanup.
	storeC, err := postgres.Open(ctx, store.url, postgres.WithGrantLease(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	storeA, storeB := store.open(t), store.open(t)
	c, err := pgbackend.New(ctx, pgbackend.Config{Host: f.srv.SocketDir(), Port: f.srv.Port(), AdminUser: f.srv.Superuser(),
		AdminDatabase: f.db, Grants: storeC, Scope: "race"})
	if err != nil {
		t.Fatal(err)
	}
	a, b := f.storeReplica(t, storeA), f.storeReplica(t, storeB)

	if l, _, err := c.Prepare(ctx, f.role, false, []string{f.group}); err != nil || l.Empty() {
		t.Fatalf("C's session: %v, holds a group: %v", err, err == nil && !l.Empty())
	}
	// C dies: its lease is no longer renewed, and runs out.
	c.Close()
	storeC.Close()
	waitUntil(t, "C's lease runs out", func() bool {
		var lapsed bool
		if err := store.admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM session_grants WHERE owner = $1 AND lease_until < now())`,
			storeC.Origin()).Scan(&lapsed); err != nil {
			t.Fatal(err)
		}
		return lapsed
	})

	other := f.uncommittedRevoke(t)
	type result struct {
		n   int
		err error
	}
	swept := make(chan result, 1)
	go func() {
		n, err := a.Reconcile(ctx)
		swept <- result{n, err}
	}()
	watch := f.conn(t)
	waitUntil(t, "A's REVOKE of C's leftover waits", func() bool { return f.lockWaits(t, watch, "transactionid") > 0 })

	var sweep result
	onB, notices := f.prepareDuring(t, b, func() {
		if err := other.Rollback(ctx); err != nil {
			t.Fatal(err)
		}
		sweep = <-swept
	})
	if sweep.err != nil || sweep.n != 1 {
		t.Fatalf("A's sweep: %d revoked, %v; want C's leftover revoked", sweep.n, sweep.err)
	}
	if onB.Empty() || len(notices) != 0 || !f.member(t) {
		t.Fatalf("B's session holds the group: %v, notices %v, member after A's sweep: %v; want it held and granted", !onB.Empty(), notices, f.member(t))
	}
	if owners := store.owners(t, f.role, f.group); !slices.Equal(owners, []string{storeB.Origin()}) {
		t.Fatalf("records %v, want B's alone (C's went with A's revoke)", owners)
	}
	onB.Release(ctx)
	if f.member(t) {
		t.Fatal("the membership outlived B's session")
	}
}

// refuseConnections makes the store's database refuse connections and
// ends those it has but the test's own (a store outage, the backend up),
// until the returned function lets them in again.
func (s *storeFixture) refuseConnections(t *testing.T, via *pgx.Conn) (restore func()) {
	t.Helper()
	ctx := context.Background()
	db := pgx.Identifier{s.name}.Sanitize()
	if _, err := via.Exec(ctx, "ALTER DATABASE "+db+" WITH ALLOW_CONNECTIONS false"); err != nil {
		t.Fatal(err)
	}
	if _, err := via.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> $2`,
		s.name, s.admin.PgConn().PID()); err != nil {
		t.Fatal(err)
	}
	// pg_terminate_backend only signals: gone once they left pg_stat_activity.
	waitUntil(t, "the store's connections end", func() bool {
		var n int
		if err := via.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> $2`,
			s.name, s.admin.PgConn().PID()).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
	restored := false
	restore = func() {
		if restored {
			return
		}
		restored = true
		if _, err := via.Exec(ctx, "ALTER DATABASE "+db+" WITH ALLOW_CONNECTIONS true"); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(restore)
	return restore
}

// The store fails while a release's REVOKE runs, after its check found no
// other holder: the membership must go, and nothing be left granted with
// no record. The release's re-check after the REVOKE (a replica that
// joined meanwhile gets the membership back) answered "held" on the store
// error and granted the membership again, its own record already
// forgotten: the role kept the group for good, no sweep revoked it (no
// record names it), and the role's later sessions took it for the role's
// own ("already a member").
func TestStoreFailingDuringAReleaseLeavesNoUnrecordedGrant(t *testing.T) {
	f := newRaceFixture(t)
	store := newStoreFixture(t)
	ctx := context.Background()
	storeA := store.open(t)
	a := f.storeReplica(t, storeA)

	onA := f.lease(t, a, ctx, []string{f.group})
	if onA.Empty() || !f.member(t) {
		t.Fatal("A's session holds no group")
	}
	other := f.uncommittedRevoke(t)
	released := make(chan struct{})
	go func() { defer close(released); onA.Release(ctx) }()
	watch := f.conn(t)
	waitUntil(t, "A's REVOKE waits", func() bool { return f.lockWaits(t, watch, "transactionid") > 0 })

	restore := store.refuseConnections(t, f.conn(t)) // not f.admin, in other's transaction
	if err := other.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	<-released
	restore()

	member := f.member(t)
	owners := store.owners(t, f.role, f.group)
	n, err := a.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if member || f.member(t) {
		t.Fatalf("after the release: member %v, records %v; after a sweep (%d revoked): member %v; want the membership gone", member, owners, n, f.member(t))
	}
	// A record the store could not delete (it was down) outlives the
	// membership; the sweep finds the membership gone and drops it.
	if owners := store.owners(t, f.role, f.group); len(owners) != 0 {
		t.Fatalf("records %v left after the sweep, for a membership that is gone", owners)
	}
}

// hookedGrants is a PostgreSQL store whose GrantHeldElsewhere fails
// while fail is set, as a read does when the store blips (a failover, a
// broken connection) and the next call, a write, goes through; asked,
// when set, is called as GrantHeldElsewhere begins, to hold a replica
// there.
type hookedGrants struct {
	*postgres.DB
	fail  atomic.Bool
	asked func()
	// failRecords makes RecordGrant fail too (the store down for writes).
	failRecords atomic.Bool
	// recorded, when set, is called after each grant record is written.
	recorded func()
}

func (s *hookedGrants) RecordGrant(ctx context.Context, g shiftkey.SessionGrant) error {
	if s.failRecords.Load() {
		return errors.New("store unavailable (test)")
	}
	err := s.DB.RecordGrant(ctx, g)
	if s.recorded != nil {
		s.recorded()
	}
	return err
}

func (s *hookedGrants) GrantHeldElsewhere(ctx context.Context, g shiftkey.SessionGrant) (bool, error) {
	if s.asked != nil {
		s.asked()
	}
	if s.fail.Load() {
		return false, errors.New("store unavailable (test)")
	}
	return s.DB.GrantHeldElsewhere(ctx, g)
}

// A sweep that cannot learn whether another replica holds a leftover
// grant of this process's own (a crash's, or a release whose REVOKE
// failed) must leave both the membership and its record for the next
// sweep. It took the store error for "another replica holds it", kept
// the membership and forgot its record: the membership then had no
// record at all, and no later sweep revoked it.
func TestSweepThatCannotAskTheStoreKeepsItsRecord(t *testing.T) {
	f := newRaceFixture(t)
	store := newStoreFixture(t)
	ctx := context.Background()
	grants := &hookedGrants{DB: store.open(t)}
	replica := func() *pgbackend.Backend {
		b, err := pgbackend.New(ctx, pgbackend.Config{Host: f.srv.SocketDir(), Port: f.srv.Port(), AdminUser: f.srv.Superuser(),
			AdminDatabase: f.db, Grants: grants, Scope: "race"})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		return b
	}
	// The gateway that left its grant: its session never released.
	before := replica()
	if l, _, err := before.Prepare(ctx, f.role, false, []string{f.group}); err != nil || l.Empty() {
		t.Fatalf("the session: %v, holds a group: %v", err, err == nil && !l.Empty())
	}
	before.Close()
	after := replica()

	grants.fail.Store(true)
	n, err := after.Reconcile(ctx)
	grants.fail.Store(false)
	if !f.member(t) {
		t.Fatalf("the sweep that could not ask the store revoked the membership (%d, %v)", n, err)
	}
	if owners := store.owners(t, f.role, f.group); len(owners) != 1 {
		t.Fatalf("the sweep that could not ask the store (%d revoked, %v) left records %v, member %v; want the record kept for the next sweep",
			n, err, owners, f.member(t))
	}
	if n, err := after.Reconcile(ctx); err != nil || n != 1 || f.member(t) {
		t.Fatalf("the next sweep: %d revoked, %v, member still %v; want the leftover revoked", n, err, f.member(t))
	}
}

// A login that finds the role already a member of a group it asks for,
// and cannot learn from the store whether another replica holds that
// membership for its sessions, must not take it for one: it may be the
// role's own (an operator's grant), which no session may revoke. The store
// error counted as "another replica holds it": the login recorded the
// membership as its own too, and its session's end revoked the operator's
// grant.
func TestLoginThatCannotAskTheStoreLeavesTheRolesOwnMembership(t *testing.T) {
	f := newRaceFixture(t)
	store := newStoreFixture(t)
	ctx := context.Background()
	grants := &hookedGrants{DB: store.open(t)}
	b := f.grantsReplica(t, grants)
	if _, err := f.admin.Exec(ctx, "GRANT "+f.group+" TO "+f.role); err != nil { // the role's own
		t.Fatal(err)
	}

	grants.fail.Store(true)
	f.loginLeavesTheRolesOwn(t, b, store, grants, "the role's own membership")
}

// As above, for a membership an operator grants between the login's look
// at the role and its GRANT (after its record is written): the GRANT
// finds it made by someone else, and the login, unable to ask the store
// whether a replica holds it, must leave it as the role's own. The store
// error counted as "another replica holds it", the session held it, and
// its end revoked the operator's grant.
func TestLoginThatCannotAskTheStoreLeavesAnOperatorsGrantMeanwhile(t *testing.T) {
	f := newRaceFixture(t)
	store := newStoreFixture(t)
	ctx := context.Background()
	grants := &hookedGrants{DB: store.open(t)}
	b := f.grantsReplica(t, grants)
	grants.recorded = func() {
		grants.recorded = nil
		if _, err := f.admin.Exec(ctx, "GRANT "+f.group+" TO "+f.role); err != nil { // the role's own
			t.Error(err)
		}
		grants.fail.Store(true)
	}

	f.loginLeavesTheRolesOwn(t, b, store, grants, "an operator's grant meanwhile")
}

// loginLeavesTheRolesOwn runs a session of f's role asking for f's group
// through b, its store failing from where the caller set grants.fail (on,
// once Prepare has run), and ends it. It fails the test unless the role's
// own membership (what) is still there, with no record of it.
func (f *raceFixture) loginLeavesTheRolesOwn(t *testing.T, b *pgbackend.Backend, store *storeFixture, grants *hookedGrants, what string) {
	t.Helper()
	ctx := context.Background()
	l, notices, err := b.Prepare(ctx, f.role, false, []string{f.group})
	grants.fail.Store(false)
	held := err == nil && !l.Empty()
	if err == nil {
		l.Release(ctx)
	}
	if !f.member(t) {
		t.Fatalf("the login (err %v, notices %v, held the group: %v) took %s for a shared one, and its end revoked it",
			err, notices, held, what)
	}
	if owners := store.owners(t, f.role, f.group); len(owners) != 0 {
		t.Fatalf("records %v of the role's own membership", owners)
	}
}

// The store fails as a session's end releases its group: the release
// cannot learn whether another replica holds the membership, nor write a
// record. It leaves the membership, as it must not cut another replica's
// sessions, but it must leave its record too, so that a sweep revokes the
// membership once the store is back. It forgot its record before it
// looked (the store still answered), and could not write it again: the
// membership stayed with no record, and no sweep revoked it.
func TestReleaseThatCannotAskTheStoreLeavesItsRecord(t *testing.T) {
	f := newRaceFixture(t)
	store := newStoreFixture(t)
	ctx := context.Background()
	grants := &hookedGrants{DB: store.open(t)}
	b := f.grantsReplica(t, grants)
	l := f.lease(t, b, ctx, []string{f.group})
	if l.Empty() || !f.member(t) {
		t.Fatal("the session holds no group")
	}

	grants.fail.Store(true)
	grants.failRecords.Store(true)
	l.Release(ctx)
	grants.fail.Store(false)
	grants.failRecords.Store(false)
	member, owners := f.member(t), store.owners(t, f.role, f.group)
	if member && len(owners) == 0 {
		t.Fatalf("after a release that could not ask the store: member %v, records %v; want the membership revoked or its record kept", member, owners)
	}
	if n, err := b.Reconcile(ctx); err != nil || f.member(t) {
		t.Fatalf("the sweep with the store back: %d revoked, %v, member still %v", n, err, f.member(t))
	}
}

// A session's end whose REVOKE waits past the release's bound
// (releaseTimeout; here the release's context is cancelled while the
// REVOKE waits on a lock held on the membership's catalog row), and whose
// statement the backend then drops too (it is restarted, or an operator
// ends the stuck process): the membership stays, and the release must
// leave its record, as releaseTimeout's comment promises, so that the
// sweep revokes it. The release forgot its record before the REVOKE and
// wrote it again with the context that had just ended, which failed: the
// membership stayed granted with no record, and no sweep revoked it. Real
// backend and store, no hook.
func TestReleaseWhoseRevokeGaveUpLeavesItsRecord(t *testing.T) {
	f := newRaceFixture(t)
	store := newStoreFixture(t)
	ctx := context.Background()
	a := f.storeReplica(t, store.open(t))
	l := f.lease(t, a, ctx, []string{f.group})
	if l.Empty() || !f.member(t) {
		t.Fatal("the session holds no group")
	}

	f.revokeGivesUp(t, "the release's", func(ctx context.Context) { l.Release(ctx) })
	f.recordKeptForTheSweep(t, a, store, "a release", "the record kept for the sweep")
}

// The same for the revoke of a group that turned unsafe while held (the
// sweep's re-check, cutLocked): its REVOKE gives up at the sweep's bound
// (here the sweep's context is cancelled while the REVOKE waits on a lock)
// and the backend drops the statement. The cut had forgotten the record
// first and wrote it again with the ended context, which failed; the
// holding was gone from this process's refs too, so nothing named the
// membership any more: the unsafe group stayed granted to the role, and
// no sweep ever revoked it.
func TestCutWhoseRevokeGaveUpLeavesItsRecord(t *testing.T) {
	f := newRaceFixture(t)
	store := newStoreFixture(t)
	ctx := context.Background()
	a := f.storeReplica(t, store.open(t))
	var clock testClock
	pgbackend.SetClock(a, clock.now)
	l := f.lease(t, a, ctx, []string{f.group})
	if l.Empty() || !f.member(t) {
		t.Fatal("the session holds no group")
	}
	f.makeUnsafe(t, false)
	clock.pastCache()

	f.revokeGivesUp(t, "the cut's", func(ctx context.Context) { a.Reconcile(ctx) })
	f.recordKeptForTheSweep(t, a, store, "a cut", "the unsafe membership kept recorded for the sweep")
}

// revokeGivesUp runs op, which REVOKEs f's membership (whose REVOKE names
// it in a failure), while another transaction holds the membership's
// catalog row, ends op's context once the REVOKE waits, then ends the
// backend process still waiting (its client is gone), so that the REVOKE
// never commits.
func (f *raceFixture) revokeGivesUp(t *testing.T, whose string, op func(context.Context)) {
	t.Helper()
	ctx := context.Background()
	other := f.uncommittedRevoke(t)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); op(rctx) }()
	watch := f.conn(t)
	waitUntil(t, whose+" REVOKE waits", func() bool { return f.lockWaits(t, watch, "transactionid") > 0 })
	cancel()
	<-done
	if _, err := watch.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE application_name = 'shiftkey-admin' AND datname = $1 AND wait_event = 'transactionid'`, f.db); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the stuck REVOKE's process ends", func() bool { return f.lockWaits(t, watch, "transactionid") == 0 })
	if err := other.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
}

// recordKeptForTheSweep fails the test unless f's membership, left by
// what whose REVOKE gave up, is still recorded, and a's next sweep
// revokes it.
func (f *raceFixture) recordKeptForTheSweep(t *testing.T, a *pgbackend.Backend, store *storeFixture, what, want string) {
	t.Helper()
	ctx := context.Background()
	member, owners := f.member(t), store.owners(t, f.role, f.group)
	if member && len(owners) == 0 {
		n, err := a.Reconcile(ctx)
		t.Fatalf("after %s whose REVOKE gave up: member %v, records %v; a sweep then revoked %d (%v), member still %v; want %s",
			what, member, owners, n, err, f.member(t), want)
	}
	if n, err := a.Reconcile(ctx); err != nil || n != 1 || f.member(t) {
		t.Fatalf("the next sweep: %d revoked, %v, member still %v; want the leftover revoked", n, err, f.member(t))
	}
}
