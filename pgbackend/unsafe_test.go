package pgbackend_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/pgbackend"
)

// testClock is a clock the test moves on, past the 5 s for which a
// group's verdict and the databases' catalogs are reused.
type testClock struct{ off atomic.Int64 }

func (c *testClock) now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

// pastCache moves the clock past what the backends cached.
func (c *testClock) pastCache() { c.off.Add(int64(pgbackend.OutlivesFor + time.Second)) }

// observedReplica is f.replica with obs hearing its grants and revokes
// and clock as its clock.
func (f *raceFixture) observedReplica(t *testing.T, shared *sharedGrants, name string, obs *changes, clock *testClock) *pgbackend.Backend {
	t.Helper()
	b, err := pgbackend.New(context.Background(), pgbackend.Config{Host: f.srv.SocketDir(), Port: f.srv.Port(), AdminUser: f.srv.Superuser(),
		AdminDatabase: f.db, Grants: grantView{shared, name}, Scope: "race", Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	pgbackend.SetClock(b, clock.now)
	return b
}

// prepare is b.Prepare of f's role for groups, which must not fail; the
// lease is released when the test ends, if it has not been.
func (f *raceFixture) prepare(t *testing.T, b *pgbackend.Backend, ctx context.Context, groups []string) (*pgbackend.Lease, []pgbackend.Notice) {
	t.Helper()
	l, notices, err := b.Prepare(ctx, f.role, false, groups)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Release(context.Background()) })
	return l, notices
}

// lease is prepare's lease.
func (f *raceFixture) lease(t *testing.T, b *pgbackend.Backend, ctx context.Context, groups []string) *pgbackend.Lease {
	t.Helper()
	l, _ := f.prepare(t, b, ctx, groups)
	return l
}

// makeUnsafe gives f's group CREATE on a new schema: in f's database, or
// in a database of its own when elsewhere is set (the membership is the
// role's in every database). It returns the connection to that database,
// to make the group safe again with REVOKE CREATE ON SCHEMA schema.
func (f *raceFixture) makeUnsafe(t *testing.T, elsewhere bool) (c *pgx.Conn, schema string) {
	t.Helper()
	ctx := context.Background()
	c = f.admin
	if elsewhere {
		other := pgtest.NewDatabase(t)
		oc, err := pgx.Connect(ctx, f.srv.ConnString(f.srv.Superuser(), other))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { oc.Close(ctx) })
		c = oc
	}
	schema = "s_" + strings.TrimPrefix(f.group, "race_readers_")
	for _, s := range []string{"CREATE SCHEMA " + schema, "GRANT CREATE ON SCHEMA " + schema + " TO " + f.group} {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Fatal(s, err)
		}
	}
	return c, schema
}

// unsafeRevokes are the revokes obs heard that give a reason.
func unsafeRevokes(obs *changes) []shiftkey.GrantChange {
	var out []shiftkey.GrantChange
	for _, r := range obs.revokes() {
		if r.Reason != "" {
			out = append(out, r)
		}
	}
	return out
}

// A group is judged when it is granted, but a session of a role whose
// other session on the same process already holds it joined that
// membership without a look (Prepare's refs): a group an administrator
// gave CREATE on a schema since (here or in another database) was handed
// to every new session of the role until the last one ended, while a
// member could SET ROLE to it and create, as it, a SECURITY DEFINER
// function to call once the credential expired. The membership is the
// role's, not one session's: it is revoked at once (the first session
// loses it too), the new session is told why, and the revoke is reported
// with the reason.
func TestGroupThatTurnedUnsafeWhileHeldIsRevoked(t *testing.T) {
	for _, elsewhere := range []bool{false, true} {
		t.Run(map[bool]string{false: "same database", true: "another database"}[elsewhere], func(t *testing.T) {
			f := newRaceFixture(t)
			ctx := context.Background()
			shared := &sharedGrants{records: map[[3]string]bool{}}
			var obs changes
			var clock testClock
			b := f.observedReplica(t, shared, "a", &obs, &clock)
			first, notices := f.prepare(t, b, ctx, []string{f.group})
			if first.Empty() || len(notices) != 0 || !f.member(t) {
				t.Fatalf("the first session holds the group: %v, notices %v", !first.Empty(), notices)
			}
			f.makeUnsafe(t, elsewhere)
			clock.pastCache()
			origin := shiftkey.SessionOrigin{ConnID: 2, Source: "127.0.0.1:5002", CredentialID: "cred-2"}
			second, notices := f.prepare(t, b, shiftkey.WithSessionOrigin(ctx, origin), []string{f.group})
			if !second.Empty() || f.member(t) {
				t.Fatalf("the second session was handed the group that may now create in a schema (lease empty: %v, member: %v)", second.Empty(), f.member(t))
			}
			if len(notices) != 1 || !strings.Contains(notices[0].Message, f.group) || !strings.Contains(notices[0].Message, "create in a schema") {
				t.Errorf("notices %v, want one naming %s and why", notices, f.group)
			}
			revokes := unsafeRevokes(&obs)
			if len(revokes) != 1 || revokes[0].Session != origin || revokes[0].Group != f.group {
				t.Fatalf("revokes with a reason: %+v, want one, the second session's", revokes)
			}
			if n := b.GrantsHeld(); n != 0 {
				t.Errorf("GrantsHeld %d after the revoke, want 0", n)
			}
			first.Release(ctx)
			if n := len(obs.revokes()); n != 1 {
				t.Errorf("%d revokes after the first session's end, want only the one", n)
			}
			shared.mu.Lock()
			left := len(shared.records)
			shared.mu.Unlock()
			if left != 0 {
				t.Errorf("grant records left: %d, want none", left)
			}
		})
	}
}

// The same on another replica: a session there found the membership a
// first replica granted and shared it (joinShared) without judging the
// group, which had turned unsafe since. It is revoked, and the first
// replica's next session, finding its own hold gone unsafe, does not
// report a second revoke of a membership already gone.
func TestSharedGroupThatTurnedUnsafeIsRevoked(t *testing.T) {
	f := newRaceFixture(t)
	ctx := context.Background()
	shared := &sharedGrants{records: map[[3]string]bool{}}
	var obsA, obsB changes
	var clock testClock
	a, b := f.observedReplica(t, shared, "a", &obsA, &clock), f.observedReplica(t, shared, "b", &obsB, &clock)
	onA := f.lease(t, a, ctx, []string{f.group})
	if onA.Empty() || !f.member(t) {
		t.Fatal("the first replica's session does not hold the group")
	}
	f.makeUnsafe(t, false)
	clock.pastCache()
	onB, notices := f.prepare(t, b, ctx, []string{f.group})
	if !onB.Empty() || f.member(t) {
		t.Fatalf("the other replica's session shared the group that may now create in a schema (lease empty: %v, member: %v)", onB.Empty(), f.member(t))
	}
	if len(notices) != 1 || !strings.Contains(notices[0].Message, "create in a schema") {
		t.Errorf("notices %v, want one saying why", notices)
	}
	if n := len(unsafeRevokes(&obsB)); n != 1 {
		t.Fatalf("revokes with a reason on the other replica: %d, want 1", n)
	}
	again, notices := f.prepare(t, a, ctx, []string{f.group})
	if !again.Empty() || len(notices) != 1 || f.member(t) {
		t.Errorf("the first replica's next session: lease empty %v, notices %v, member %v; want no group and a notice", again.Empty(), notices, f.member(t))
	}
	if n := len(obsA.revokes()); n != 0 {
		t.Errorf("the first replica reported %d revokes of a membership already gone", n)
	}
	if n := a.GrantsHeld(); n != 0 {
		t.Errorf("the first replica's GrantsHeld %d, want 0", n)
	}
}

// With no new session to look, the periodic sweep (Reconcile) revokes a
// membership this process holds whose group turned unsafe. Once the
// group is safe again it is granted anew, and the end of a session whose
// hold was cut does not revoke the new grant.
func TestSweepRevokesGroupThatTurnedUnsafe(t *testing.T) {
	f := newRaceFixture(t)
	ctx := context.Background()
	shared := &sharedGrants{records: map[[3]string]bool{}}
	var obs changes
	var clock testClock
	b := f.observedReplica(t, shared, "a", &obs, &clock)
	first := f.lease(t, b, ctx, []string{f.group})
	oc, schema := f.makeUnsafe(t, true)
	clock.pastCache()
	if _, err := b.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if f.member(t) {
		t.Fatal("the sweep left the role a member of a group that may now create in a schema")
	}
	revokes := unsafeRevokes(&obs)
	if len(revokes) != 1 || revokes[0].Session != (shiftkey.SessionOrigin{}) || !strings.Contains(revokes[0].Reason, "create in a schema") {
		t.Fatalf("revokes with a reason: %+v, want one, the sweep's", revokes)
	}
	if n := b.GrantsHeld(); n != 0 {
		t.Errorf("GrantsHeld %d after the sweep's revoke, want 0", n)
	}

	// Safe again.
	if _, err := oc.Exec(ctx, "REVOKE CREATE ON SCHEMA "+schema+" FROM "+f.group); err != nil {
		t.Fatal(err)
	}
	clock.pastCache()
	third, notices := f.prepare(t, b, ctx, []string{f.group})
	if third.Empty() || len(notices) != 0 || !f.member(t) {
		t.Fatalf("the group, safe again, was not granted: lease empty %v, notices %v", third.Empty(), notices)
	}
	first.Release(ctx)
	if !f.member(t) {
		t.Fatal("the end of a session whose hold was cut revoked the new grant")
	}
	third.Release(ctx)
	if f.member(t) {
		t.Fatal("the new grant outlived its session")
	}
}

// What grantable reads of the group itself counts too: a group given an
// attribute after it was granted (CREATEROLE here) is revoked from the
// role at the next session that asks for it.
func TestGroupGivenAnAttributeWhileHeldIsRevoked(t *testing.T) {
	f := newRaceFixture(t)
	ctx := context.Background()
	shared := &sharedGrants{records: map[[3]string]bool{}}
	var obs changes
	var clock testClock
	b := f.observedReplica(t, shared, "a", &obs, &clock)
	f.lease(t, b, ctx, []string{f.group})
	if _, err := f.admin.Exec(ctx, "ALTER ROLE "+f.group+" CREATEROLE"); err != nil {
		t.Fatal(err)
	}
	clock.pastCache()
	second, notices := f.prepare(t, b, ctx, []string{f.group})
	if !second.Empty() || f.member(t) {
		t.Fatalf("the second session was handed a CREATEROLE group (lease empty: %v, member: %v)", second.Empty(), f.member(t))
	}
	if len(notices) != 1 || !strings.Contains(notices[0].Message, "CREATEROLE") {
		t.Errorf("notices %v, want one naming CREATEROLE", notices)
	}
	if n := len(unsafeRevokes(&obs)); n != 1 {
		t.Errorf("revokes with a reason: %d, want 1", n)
	}
}

// A database that cannot be read at the moment (its catalogs locked
// here; a connection limit or a restart elsewhere) refuses a group at
// grant time, but says nothing of a group already held: the re-check
// skips it rather than revoke every held group from every live session
// at a blip, and the next look judges it.
func TestHeldGroupKeptWhileADatabaseCannotBeRead(t *testing.T) {
	f := newRaceFixture(t)
	ctx := context.Background()
	shared := &sharedGrants{records: map[[3]string]bool{}}
	var obs changes
	var clock testClock
	b := f.observedReplica(t, shared, "a", &obs, &clock)
	f.lease(t, b, ctx, []string{f.group})
	other := pgtest.NewDatabase(t)
	if _, err := f.admin.Exec(ctx, "ALTER DATABASE "+other+" SET lock_timeout = '200ms'"); err != nil {
		t.Fatal(err)
	}
	oc, err := pgx.Connect(ctx, f.srv.ConnString(f.srv.Superuser(), other))
	if err != nil {
		t.Fatal(err)
	}
	defer oc.Close(ctx)
	tx, err := oc.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "LOCK TABLE pg_catalog.pg_namespace IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	clock.pastCache()
	if _, err := b.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if !f.member(t) || len(obs.revokes()) != 0 {
		t.Fatalf("a database that could not be read made the sweep revoke a held group (member: %v, revokes %+v)", f.member(t), obs.revokes())
	}
	// A new group is still refused meanwhile, as at any grant.
	fresh := f.newGroup(t, "_new")
	clock.pastCache()
	_, notices := f.prepare(t, b, ctx, []string{f.group, fresh})
	if len(notices) != 1 || !strings.Contains(notices[0].Message, fresh) || !strings.Contains(notices[0].Message, "could not be checked") {
		t.Errorf("notices %v, want one refusing %s as not checked", notices, fresh)
	}
	if !f.member(t) {
		t.Error("the second session's look revoked the held group while a database could not be read")
	}
}

// cutLog records what a lease's session is told by OnGroupCut.
type cutLog struct {
	mu   sync.Mutex
	told []string // "group: why"
}

func (c *cutLog) hear(l *pgbackend.Lease) {
	l.OnGroupCut(func(group, why string) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.told = append(c.told, group+": "+why)
	})
}

func (c *cutLog) heard() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.told...)
}

// A session that ran SET ROLE to its group keeps acting as it after the
// REVOKE, so the sessions whose leases held a membership revoked as it
// turned unsafe are told (the gateway ends them): at the revoke, or when
// they ask after it. The role's sessions that did not hold it, and the
// one whose login revoked it, are not.
func TestLeasesHoldingAGroupThatTurnedUnsafeAreTold(t *testing.T) {
	f := newRaceFixture(t)
	ctx := context.Background()
	shared := &sharedGrants{records: map[[3]string]bool{}}
	var obs changes
	var clock testClock
	b := f.observedReplica(t, shared, "a", &obs, &clock)
	prepare := func(groups ...string) *pgbackend.Lease {
		l := f.lease(t, b, ctx, groups)
		t.Cleanup(func() { l.Release(ctx) })
		return l
	}
	var first, late, none, second cutLog
	first.hear(prepare(f.group))
	lateLease := prepare(f.group)
	none.hear(prepare())
	f.makeUnsafe(t, false)
	clock.pastCache()
	secondLease := prepare(f.group)
	second.hear(secondLease)
	if !secondLease.Empty() || f.member(t) {
		t.Fatal("the group that turned unsafe was not revoked")
	}
	if got := first.heard(); len(got) != 1 || !strings.HasPrefix(got[0], f.group+": ") || !strings.Contains(got[0], "create in a schema") {
		t.Fatalf("the session holding the group was told %q, want once, naming it and why", got)
	}
	late.hear(lateLease)
	if got := late.heard(); len(got) != 1 {
		t.Errorf("a session holding the group that asks after the revoke was told %q, want once", got)
	}
	// Membership is the role's: a session of it that never asked for
	// the group could SET ROLE to it all the same.
	if got := none.heard(); len(got) != 1 || !strings.HasPrefix(got[0], f.group+": ") {
		t.Errorf("a session of the role without the group was told %q, want once: it could have SET ROLE to it", got)
	}
	if got := second.heard(); len(got) != 0 {
		t.Errorf("the session whose login revoked the group, before it could use it, was told %q", got)
	}
}

// A membership another replica revoked as it turned unsafe is gone for
// this replica's sessions too, but one of them that ran SET ROLE to the
// group still acts as it: this replica's own look (its sweep here) finds
// the membership already gone and tells its sessions all the same.
func TestLeasesToldWhenAnotherReplicaRevokedTheGroup(t *testing.T) {
	f := newRaceFixture(t)
	ctx := context.Background()
	shared := &sharedGrants{records: map[[3]string]bool{}}
	var obsA, obsB changes
	var clock testClock
	a, b := f.observedReplica(t, shared, "a", &obsA, &clock), f.observedReplica(t, shared, "b", &obsB, &clock)
	onA := f.lease(t, a, ctx, []string{f.group})
	var told cutLog
	told.hear(onA)
	f.makeUnsafe(t, false)
	clock.pastCache()
	f.lease(t, b, ctx, []string{f.group})
	if f.member(t) || len(unsafeRevokes(&obsB)) != 1 {
		t.Fatal("the other replica did not revoke the group that turned unsafe")
	}
	if got := told.heard(); len(got) != 0 {
		t.Fatalf("told %q before this replica looked", got)
	}
	if _, err := a.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got := told.heard(); len(got) != 1 || !strings.Contains(got[0], "create in a schema") {
		t.Fatalf("the session holding the membership another replica revoked was told %q at this replica's sweep, want once", got)
	}
	if n := len(obsA.revokes()); n != 0 {
		t.Errorf("this replica reported %d revokes of a membership already gone", n)
	}
}
