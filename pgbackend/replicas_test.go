package pgbackend_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/pgbackend"
	"github.com/shiftkey/shiftkey/pgserver"
)

// sharedGrants is the grant records of several replicas in one place, as
// a shared store keeps them; each replica sees it through a view with its
// own name. holdersAsked, when set, is called as a replica has its answer
// about other holders, before it gets it, so a test can line up the
// replicas' releases.
type sharedGrants struct {
	mu           sync.Mutex
	records      map[[3]string]bool // replica, role, group
	holdersAsked func()
	recorded     func() // when set, called after a replica records a grant, before it acts on it
}

type grantView struct {
	s       *sharedGrants
	replica string
}

func (v grantView) RecordGrant(_ context.Context, g shiftkey.SessionGrant) error {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	v.s.records[[3]string{v.replica, g.Role, g.Group}] = true
	if hook := v.s.recorded; hook != nil {
		v.s.mu.Unlock()
		defer v.s.mu.Lock()
		hook()
	}
	return nil
}

func (v grantView) ForgetGrant(_ context.Context, g shiftkey.SessionGrant) error {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	delete(v.s.records, [3]string{v.replica, g.Role, g.Group})
	return nil
}

func (v grantView) Grants(_ context.Context, scope string) ([]shiftkey.SessionGrant, error) {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	var out []shiftkey.SessionGrant
	for k := range v.s.records {
		if k[0] == v.replica {
			out = append(out, shiftkey.SessionGrant{Scope: scope, Role: k[1], Group: k[2]})
		}
	}
	return out, nil
}

func (v grantView) GrantHeldElsewhere(_ context.Context, g shiftkey.SessionGrant) (bool, error) {
	held := false
	v.s.mu.Lock()
	for k := range v.s.records {
		if k[0] != v.replica && k[1] == g.Role && k[2] == g.Group {
			held = true
		}
	}
	v.s.mu.Unlock()
	if v.s.holdersAsked != nil {
		v.s.holdersAsked()
	}
	return held, nil
}

func (v grantView) GrantLapsedElsewhere(context.Context, shiftkey.SessionGrant) (bool, error) {
	return false, nil
}

// Two replicas whose sessions of one role both hold a group, ending at the
// same moment: the group is revoked. Both look for the other's record at
// once (the barrier below lines them up: neither acts on its answer before
// both have one). Looking before forgetting their
// own, each saw the other's, both left the membership, and it stayed
// granted with no record for Reconcile: the rare "group went with the last
// session" failure of the two-replica test under load.
func TestReleasesAtOnceOnTwoReplicasRevoke(t *testing.T) {
	srv := pgtest.Server(t)
	db := pgtest.NewDatabase(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, srv.ConnString(srv.Superuser(), db))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE ROLE twin_readers NOLOGIN"); err != nil && !pgtestDuplicate(err) {
		t.Fatal(err)
	}
	shared := &sharedGrants{records: map[[3]string]bool{}}
	var replicas []*pgbackend.Backend
	for _, name := range []string{"a", "b"} {
		b, err := pgbackend.New(ctx, pgbackend.Config{Host: srv.SocketDir(), Port: srv.Port(), AdminUser: srv.Superuser(),
			AdminDatabase: db, Grants: grantView{shared, name}, Scope: "twins"})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		replicas = append(replicas, b)
	}
	var leases []*pgbackend.Lease
	for _, b := range replicas {
		l, _, err := b.Prepare(ctx, "twin_user", true, []string{"twin_readers"})
		if err != nil {
			t.Fatal(err)
		}
		leases = append(leases, l)
	}
	member := func() bool { return pgtest.Member(t, admin, "twin_user", "twin_readers") }
	if !member() {
		t.Fatal("twin_user is not in twin_readers while both sessions hold it")
	}

	// Each replica's first answer about other holders waits (up to a
	// while) until the other has its own.
	var (
		mu      sync.Mutex
		arrived int
		both    = make(chan struct{})
	)
	shared.holdersAsked = func() {
		mu.Lock()
		arrived++
		if arrived == 2 {
			close(both)
		}
		mu.Unlock()
		select {
		case <-both:
		case <-time.After(5 * time.Second):
		}
	}
	var wg sync.WaitGroup
	for _, l := range leases {
		wg.Go(func() { l.Release(ctx) })
	}
	wg.Wait()
	if member() {
		t.Fatal("both replicas released the group at once and it stayed granted")
	}
	shared.mu.Lock()
	left := slices.Collect(func(yield func([3]string) bool) {
		for k := range shared.records {
			if !yield(k) {
				return
			}
		}
	})
	shared.mu.Unlock()
	if len(left) != 0 {
		t.Fatalf("grant records left after both released: %v", left)
	}
}

// raceFixture is a database, a group role of the run's own (roles are the
// server's, not the database's) and a login role, both new, on the shared
// test server.
type raceFixture struct {
	srv         *pgserver.Server
	db          string
	admin       *pgx.Conn
	role, group string
}

func newRaceFixture(t testing.TB) *raceFixture {
	t.Helper()
	srv := pgtest.Server(t)
	db := pgtest.NewDatabase(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, srv.ConnString(srv.Superuser(), db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(ctx) })
	run, _, _ := strings.Cut(db, "_") // "t12": unique in the test binary
	f := &raceFixture{srv: srv, db: db, admin: admin, role: "race_user_" + run, group: "race_readers_" + run}
	if _, err := admin.Exec(ctx, "CREATE ROLE "+f.group+" NOLOGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "CREATE ROLE "+f.role+" LOGIN"); err != nil {
		t.Fatal(err)
	}
	return f
}

// replica is a Backend on the fixture's server keeping its grant records
// in shared under name.
func (f *raceFixture) replica(t *testing.T, shared *sharedGrants, name string) *pgbackend.Backend {
	t.Helper()
	b, err := pgbackend.New(context.Background(), pgbackend.Config{Host: f.srv.SocketDir(), Port: f.srv.Port(), AdminUser: f.srv.Superuser(),
		AdminDatabase: f.db, Grants: grantView{shared, name}, Scope: "race"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// conn is a new superuser connection to the fixture's database, closed at cleanup.
func (f *raceFixture) conn(t *testing.T) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, f.srv.ConnString(f.srv.Superuser(), f.db))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(ctx) })
	return c
}

// newGroup creates another group role, named f.group+suffix, and returns
// its name.
func (f *raceFixture) newGroup(t *testing.T, suffix string) string {
	t.Helper()
	name := f.group + suffix
	if _, err := f.admin.Exec(context.Background(), "CREATE ROLE "+name+" NOLOGIN"); err != nil {
		t.Fatal(err)
	}
	return name
}

func (f *raceFixture) member(t *testing.T) bool {
	t.Helper()
	return pgtest.Member(t, f.admin, f.role, f.group)
}

// grantAtOnce runs each of grants on its own goroutine while the test
// holds pg_auth_members, releases it once every one of them waits, for it
// or (since replicas judge a membership under its lock: lockMembership)
// for the one ahead of it, and waits for them.
func (f *raceFixture) grantAtOnce(t *testing.T, grants ...func()) {
	t.Helper()
	ctx := context.Background()
	hold, err := f.admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hold.Exec(ctx, "LOCK TABLE pg_catalog.pg_auth_members IN SHARE MODE"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, g := range grants {
		wg.Go(g)
	}
	waiting, err := pgx.Connect(ctx, f.srv.ConnString(f.srv.Superuser(), f.db))
	if err != nil {
		t.Fatal(err)
	}
	defer waiting.Close(ctx)
	for deadline := time.Now().Add(10 * time.Second); ; {
		var n int
		if err := waiting.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE NOT granted
			AND (relation = 'pg_catalog.pg_auth_members'::regclass OR locktype = 'advisory')`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == len(grants) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d GRANTs wait for pg_auth_members, want %d", n, len(grants))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := hold.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

// Two replicas whose sessions of a role both ask for a group at the same
// moment: both log in, sharing the membership. Both found the role outside
// the group, recorded their grant and GRANTed at once (grantAtOnce). The
// second insert failed on the catalog's unique index (23505), which
// refused that login ("could not prepare the session"), as it did by hand
// with two replicas behind a load balancer. Since replicas judge a
// membership under its lock, the second finds the first's and shares it.
func TestGrantsAtOnceOnTwoReplicasShare(t *testing.T) {
	f := newRaceFixture(t)
	ctx := context.Background()
	shared := &sharedGrants{records: map[[3]string]bool{}}
	replicas := []*pgbackend.Backend{f.replica(t, shared, "a"), f.replica(t, shared, "b")}
	leases := make([]*pgbackend.Lease, len(replicas))
	errs := make([]error, len(replicas))
	f.grantAtOnce(t,
		func() { leases[0], _, errs[0] = replicas[0].Prepare(ctx, f.role, false, []string{f.group}) },
		func() { leases[1], _, errs[1] = replicas[1].Prepare(ctx, f.role, false, []string{f.group}) })
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: Prepare while another replica granted the group at once: %v", i, err)
		}
	}
	if !f.member(t) {
		t.Fatalf("%s is not in %s while both sessions hold it", f.role, f.group)
	}
	heldIs(t, "both replicas' sessions", replicas, 1, 1)
	leases[0].Release(ctx)
	if !f.member(t) {
		t.Fatal("the group went with the first of two sessions")
	}
	leases[1].Release(ctx)
	if f.member(t) {
		t.Fatal("the group stayed granted after both sessions ended")
	}
	heldIs(t, "no session left", replicas, 0, 0)
}

// A membership someone else grants (an operator, not a replica) between a
// session's look at the role and its GRANT is the role's own: the session
// must not take it for a session grant and revoke it when it ends, which
// would let a session's end undo an operator's grant. The grant record's
// hook is that moment. The session's GRANT then changed nothing (a
// notice), succeeded, and the membership was recorded and revoked as the
// session's.
func TestGrantByAnOperatorMeanwhileIsNotRevoked(t *testing.T) {
	ctx := context.Background()
	f := newRaceFixture(t)
	shared := &sharedGrants{records: map[[3]string]bool{}}
	b := f.replica(t, shared, "a")
	shared.recorded = func() {
		if _, err := f.admin.Exec(ctx, "GRANT "+f.group+" TO "+f.role); err != nil {
			t.Error(err)
		}
	}
	lease, notices, err := b.Prepare(ctx, f.role, false, []string{f.group})
	if err != nil {
		t.Fatal(err)
	}
	if len(notices) != 1 || !strings.Contains(notices[0].Message, "already a member") {
		t.Errorf("notices %v, want the group not joined: already a member", notices)
	}
	lease.Release(ctx)
	if !f.member(t) {
		t.Fatal("the session's end revoked a membership an operator granted while it logged in")
	}
	shared.mu.Lock()
	left := len(shared.records)
	shared.mu.Unlock()
	if left != 0 {
		t.Fatalf("grant records left: %d, want none (the membership is not the session's)", left)
	}
}
