package pgbackend_test

import (
	"context"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/pgbackend"
	"github.com/shiftkey/shiftkey/postgres"
)

// Two replicas on one PostgreSQL store whose machines' clocks are a
// minute apart, each half a minute off the store's: a cut is dated by the
// store's clock, and each replica dates its sessions by its reading of
// that clock (postgres.DB.Now), not by its machine's. The other replica
// ends its session that began before the cut, and not the one that began
// after it: with its machine's clock (ahead) it would have kept the first,
// with the revoking replica's (behind) it would have ended the second.
func TestGroupCutsAndSessionsAreDatedByTheStoresClock(t *testing.T) {
	f := newRaceFixture(t)
	ctx := context.Background()
	srv := pgtest.Server(t)
	url := srv.ConnString(srv.Superuser(), pgtest.NewDatabase(t))
	openAt := func(off time.Duration) *postgres.DB {
		db, err := postgres.Open(ctx, url, postgres.WithLocalClock(func() time.Time { return time.Now().Add(off) }))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	storeA, storeB := openAt(-30*time.Second), openAt(30*time.Second)
	grants := &sharedGrants{records: map[[3]string]bool{}}
	var clock testClock
	replica := func(name string, st *postgres.DB) *pgbackend.Backend {
		b, err := pgbackend.New(ctx, pgbackend.Config{Host: f.srv.SocketDir(), Port: f.srv.Port(), AdminUser: f.srv.Superuser(),
			AdminDatabase: f.db, Grants: grantView{grants, name}, Cuts: st, Scope: "race", Now: st.Now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		pgbackend.SetClock(b, clock.now)
		return b
	}
	a, b := replica("a", storeA), replica("b", storeB)
	feedB := runFeed(t, b)
	storeB.Subscribe(feedB.Changed)

	f.lease(t, a, ctx, []string{f.group})
	var before, after cutLog
	before.hear(f.lease(t, b, ctx, nil))
	f.makeUnsafe(t, false)
	clock.pastCache()
	f.lease(t, a, ctx, []string{f.group})
	if f.member(t) {
		t.Fatal("A's look did not revoke the group that turned unsafe")
	}
	toldWithin(t, &before, 5*time.Second, "B's session that began before the cut", f.group)

	cuts, err := storeB.GroupCuts(ctx, "race", f.role, time.Time{})
	if err != nil || len(cuts) != 1 {
		t.Fatalf("B reads the cuts %+v, %v; want the one", cuts, err)
	}
	// A session that begins over a second after the cut by the store's
	// clock (B's reading of it; the machine's is half a minute ahead).
	for storeB.Now().Before(cuts[0].At.Add(1500 * time.Millisecond)) {
		time.Sleep(50 * time.Millisecond)
	}
	after.hear(f.lease(t, b, ctx, nil))
	for _, role := range []string{f.role, ""} {
		if n, err := b.HearCuts(ctx, role); err != nil || n != 0 {
			t.Fatalf("HearCuts(%q) on B again: %d ended, %v; want none", role, n, err)
		}
	}
	if got := after.heard(); len(got) != 0 {
		t.Errorf("B's session that began after the cut was told %q", got)
	}
}
