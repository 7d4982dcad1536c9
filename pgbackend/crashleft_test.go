package pgbackend_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/pgbackend"
)

// A crash leaves a group granted for a session that is gone (the record
// stays for Reconcile). The restarted gateway's own sessions of the role
// that did not ask for the group (or its pooled backends of the role,
// which live on between sessions) do not need it: they must not keep the
// leftover granted, and with it every such session a member of the group
// IAM never allowed it.
func TestReconcileRevokesCrashLeftoverDespiteOwnSessions(t *testing.T) {
	f := newRaceFixture(t)
	ctx := context.Background()
	shared := &sharedGrants{records: map[[3]string]bool{}}
	// The process that crashes: its lease is never released.
	before := f.replica(t, shared, "one")
	if _, _, err := before.Prepare(ctx, f.role, false, []string{f.group}); err != nil {
		t.Fatal(err)
	}
	if !f.member(t) {
		t.Fatal("the group was not granted")
	}
	before.Close()

	// A session the successor did not open may be a lapsed replica's
	// that needs the group: it keeps it.
	other, err := pgx.Connect(ctx, f.srv.ConnString(f.role, f.db))
	if err != nil {
		t.Fatal(err)
	}
	// Its successor (the same store's records: SQLite's single process)
	// serves a session of the role that asks for no group.
	after := f.replica(t, shared, "one")
	lease, _, err := after.Prepare(ctx, f.role, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release(ctx)
	c, err := after.Connect(ctx, f.role, f.db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	if n, err := after.Reconcile(ctx); err != nil || n != 0 || !f.member(t) {
		t.Fatalf("with another session of the role: Reconcile revoked %d, %v", n, err)
	}
	pid := other.PgConn().PID()
	other.Close(ctx)
	// Its backend process leaves pg_stat_activity a moment after.
	for deadline := time.Now().Add(5 * time.Second); ; {
		var gone bool
		if err := f.admin.QueryRow(ctx, "SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)", pid).Scan(&gone); err != nil {
			t.Fatal(err)
		}
		if gone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the other session's backend did not end")
		}
		time.Sleep(10 * time.Millisecond)
	}
	n, err := after.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || f.member(t) {
		t.Fatalf("Reconcile revoked %d, member still: %v; want the leftover revoked", n, f.member(t))
	}
}

// The sweep's reconciliation of a leftover grant holds the role's lock
// while it waits on the backend; a backend that stops answering there
// (here: the membership's advisory lock held elsewhere and never let go)
// kept the lock, and with it the role's releases, for as long as the
// backend hung. Each grant's reconciliation is bounded like a release.
func TestReconcileOfAGrantIsBounded(t *testing.T) {
	f := newRaceFixture(t)
	ctx := context.Background()
	shared := &sharedGrants{records: map[[3]string]bool{}}
	before := f.replica(t, shared, "one")
	if _, _, err := before.Prepare(ctx, f.role, false, []string{f.group}); err != nil {
		t.Fatal(err)
	}
	before.Close() // a crash: the grant's record stays for Reconcile
	after := f.replica(t, shared, "one")
	hold := f.conn(t)
	if _, err := hold.Exec(ctx, "SELECT pg_advisory_lock($1)", pgbackend.MembershipLockKey(f.role, f.group)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := after.Reconcile(ctx)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Reconcile succeeded while the membership's lock was held elsewhere")
		}
		t.Logf("Reconcile gave up: %v", err)
	case <-time.After(30 * time.Second):
		hold.Close(ctx) // lets the waiting Reconcile go
		<-done
		t.Fatal("Reconcile held the role's lock waiting on the backend past any bound")
	}
}

// Found rehearsing issue 17's check (two replicas behind HAProxy, steady
// logins of a few roles with a group): the sweep revoked, logged ("stale
// group grant revoked") and audited as a reconciled RevokeSessionGroup a
// membership a session's end had revoked a moment before (36 such
// records in six minutes on the survivor): it had read the grant records
// before the release forgot them. A record whose GRANT never ran (a crash
// between the two) read the same. There is nothing to revoke there: the
// record goes, and nothing is reported.
func TestReconcileReportsOnlyAMembershipThatExists(t *testing.T) {
	f := newRaceFixture(t)
	shared := &sharedGrants{records: map[[3]string]bool{}}
	seen := &changes{}
	b, err := pgbackend.New(context.Background(), pgbackend.Config{Host: f.srv.SocketDir(), Port: f.srv.Port(), AdminUser: f.srv.Superuser(),
		AdminDatabase: f.db, Grants: grantView{shared, "a"}, Scope: "race", Observer: seen})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	origin := shiftkey.SessionOrigin{ConnID: 1, CredentialID: "c1"}
	ctx := shiftkey.WithSessionOrigin(context.Background(), origin)
	lease, _, err := b.Prepare(ctx, f.role, false, []string{f.group})
	if err != nil || lease.Empty() {
		t.Fatalf("Prepare: %v (lease empty: %v)", err, lease.Empty())
	}
	lease.Release(ctx)
	if f.member(t) {
		t.Fatal("the session's end left the membership")
	}
	// The sweep's list, read before the release forgot the record.
	shared.mu.Lock()
	shared.records[[3]string{"a", f.role, f.group}] = true
	shared.mu.Unlock()

	n, err := b.Reconcile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	revokes := seen.revokes()
	if n != 0 || len(revokes) != 1 || revokes[0].Reconciled {
		t.Errorf("Reconcile revoked %d; revoke records %+v; want 0 and only the session's own", n, revokes)
	}
	shared.mu.Lock()
	left := len(shared.records)
	shared.mu.Unlock()
	if left != 0 {
		t.Errorf("grant records left: %d, want none", left)
	}
}
