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
}

type grantView struct {
	s       *sharedGrants
	replica string
}

func (v grantView) RecordGrant(_ context.Context, g shiftkey.SessionGrant) error {
	v.s.mu.Lock()
	defer v.s.mu.Unlock()
	v.s.records[[3]string{v.replica, g.Role, g.Group}] = true
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
	member := func() bool {
		var ok bool
		if err := admin.QueryRow(ctx, "SELECT pg_has_role('twin_user', 'twin_readers', 'MEMBER')").Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
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

// Two replicas whose first sessions of a new role both ask for a group at
// the same moment: both log in, sharing the membership. Both find the role
// outside the group, record their grant and GRANT; the test holds
// pg_auth_members until both GRANTs wait for it, so that both insert the
// membership at once. The second insert failed on the catalog's unique
// index (23505), which refused that login ("could not prepare the
// session"), as it did by hand with two replicas behind a load balancer.
func TestGrantsAtOnceOnTwoReplicasShare(t *testing.T) {
	srv := pgtest.Server(t)
	db := pgtest.NewDatabase(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, srv.ConnString(srv.Superuser(), db))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	// Roles are the server's, not the database's: names of this run's own.
	run, _, _ := strings.Cut(db, "_") // "t12": unique in the test binary
	role, group := "race_user_"+run, "race_readers_"+run
	if _, err := admin.Exec(ctx, "CREATE ROLE "+group+" NOLOGIN"); err != nil {
		t.Fatal(err)
	}
	shared := &sharedGrants{records: map[[3]string]bool{}}
	var replicas []*pgbackend.Backend
	for _, name := range []string{"a", "b"} {
		b, err := pgbackend.New(ctx, pgbackend.Config{Host: srv.SocketDir(), Port: srv.Port(), AdminUser: srv.Superuser(),
			AdminDatabase: db, Grants: grantView{shared, name}, Scope: "race"})
		if err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		replicas = append(replicas, b)
	}
	// Create the role first, so that the two Prepares differ only in
	// their GRANTs.
	if l, _, err := replicas[0].Prepare(ctx, role, true, nil); err != nil {
		t.Fatal(err)
	} else {
		l.Release(ctx)
	}
	hold, err := admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hold.Exec(ctx, "LOCK TABLE pg_catalog.pg_auth_members IN SHARE MODE"); err != nil {
		t.Fatal(err)
	}
	leases := make([]*pgbackend.Lease, len(replicas))
	errs := make([]error, len(replicas))
	var wg sync.WaitGroup
	for i, b := range replicas {
		wg.Go(func() { leases[i], _, errs[i] = b.Prepare(ctx, role, true, []string{group}) })
	}
	waiting, err := pgx.Connect(ctx, srv.ConnString(srv.Superuser(), db))
	if err != nil {
		t.Fatal(err)
	}
	defer waiting.Close(ctx)
	for deadline := time.Now().Add(10 * time.Second); ; {
		var n int
		if err := waiting.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'pg_catalog.pg_auth_members'::regclass`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d GRANTs wait for pg_auth_members, want 2", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := hold.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: Prepare while another replica granted the group at once: %v", i, err)
		}
	}
	member := func() bool {
		var ok bool
		if err := admin.QueryRow(ctx, "SELECT pg_has_role($1, $2, 'MEMBER')", role, group).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !member() {
		t.Fatalf("%s is not in %s while both sessions hold it", role, group)
	}
	leases[0].Release(ctx)
	if !member() {
		t.Fatal("the group went with the first of two sessions")
	}
	leases[1].Release(ctx)
	if member() {
		t.Fatal("the group stayed granted after both sessions ended")
	}
}
