package pgbackend_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/pgbackend"
)

// changes is an Observer keeping what it hears.
type changes struct {
	mu   sync.Mutex
	seen []shiftkey.GrantChange
}

func (c *changes) Grant(g *shiftkey.GrantChange) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen = append(c.seen, *g)
}

func (c *changes) revokes() []shiftkey.GrantChange {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []shiftkey.GrantChange
	for _, g := range c.seen {
		if !g.Granted {
			out = append(out, g)
		}
	}
	return out
}

// lockedBuffer is a log destination safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// revokeMeanwhile runs revoke (which REVOKEs f's membership on the
// backend's admin pool) while another session, standing for another
// replica, has revoked the same membership in a transaction not yet
// committed: revoke's REVOKE finds the catalog row, waits for that
// transaction, and the commit then deletes the row from under it. It waits
// for revoke to end.
func (f *raceFixture) revokeMeanwhile(t *testing.T, revoke func()) {
	t.Helper()
	ctx := context.Background()
	other := f.uncommittedRevoke(t)
	done := make(chan struct{})
	go func() { defer close(done); revoke() }()
	watch := f.conn(t)
	for deadline := time.Now().Add(10 * time.Second); f.lockWaits(t, watch, "") != 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the backend's REVOKE never waited for the other revoke")
		}
	}
	if err := other.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	<-done
}

// uncommittedRevoke revokes f's membership in a transaction it leaves open
// (another replica in the middle of its revoke); rolled back when the test
// ends unless the caller ends it first.
func (f *raceFixture) uncommittedRevoke(t *testing.T) pgx.Tx {
	t.Helper()
	ctx := context.Background()
	other, err := f.admin.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Rollback(ctx) })
	if _, err := other.Exec(ctx, "REVOKE "+f.group+" FROM "+f.role); err != nil {
		t.Fatal(err)
	}
	return other
}

// lockWaits counts the backend admin pool's sessions waiting for a lock
// (of wait event event; "": any), as watch sees them.
func (f *raceFixture) lockWaits(t *testing.T, watch *pgx.Conn, event string) int {
	t.Helper()
	var n int
	if err := watch.QueryRow(context.Background(), `SELECT count(*) FROM pg_catalog.pg_stat_activity
		WHERE application_name = 'shiftkey-admin' AND datname = $1 AND wait_event_type = 'Lock' AND ($2 = '' OR wait_event = $2)`, f.db, event).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// A session's end revokes the membership as another replica revokes it
// too (credentials revoke --terminate of a login with sessions on both).
// The second REVOKE failed with "tuple concurrently deleted" (XX000): the
// replica logged "revoke group failed", wrote no revoke record for its
// session, recorded the grant again, and its sweep then revoked it as
// "reconciled", which reads as left by a crash.
func TestReleaseWhileAnotherReplicaRevokes(t *testing.T) {
	f := newRaceFixture(t)
	shared := &sharedGrants{records: map[[3]string]bool{}}
	var logs lockedBuffer
	seen := &changes{}
	b, err := pgbackend.New(context.Background(), pgbackend.Config{Host: f.srv.SocketDir(), Port: f.srv.Port(), AdminUser: f.srv.Superuser(),
		AdminDatabase: f.db, Grants: grantView{shared, "a"}, Scope: "race", Observer: seen,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	origin := shiftkey.SessionOrigin{ConnID: 7, CredentialID: "cred-terminated"}
	ctx := shiftkey.WithSessionOrigin(context.Background(), origin)
	lease, _, err := b.Prepare(ctx, f.role, false, []string{f.group})
	if err != nil {
		t.Fatal(err)
	}
	if lease.Empty() {
		t.Fatal("the group was not granted")
	}
	f.revokeMeanwhile(t, func() { lease.Release(ctx) })

	if strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", logs.String())
	}
	revokes := seen.revokes()
	if len(revokes) != 1 || revokes[0].Reconciled || revokes[0].Session != origin {
		t.Errorf("revoke records %+v, want one for the session's credential", revokes)
	}
	shared.mu.Lock()
	left := len(shared.records)
	shared.mu.Unlock()
	if left != 0 {
		t.Errorf("grant records left: %d, want none (the membership is gone)", left)
	}
	if f.member(t) {
		t.Error("the membership stayed")
	}
	if got := b.GrantsHeld(); got != 0 {
		t.Errorf("GrantsHeld %d after the session ended, want 0", got)
	}
}

// The sweep revokes a stale grant as another replica revokes the same
// membership: Reconcile failed with "tuple concurrently deleted".
func TestReconcileWhileAnotherReplicaRevokes(t *testing.T) {
	f := newRaceFixture(t)
	ctx := context.Background()
	shared := &sharedGrants{records: map[[3]string]bool{{"a", f.role, f.group}: true}}
	b := f.replica(t, shared, "a")
	if _, err := f.admin.Exec(ctx, "GRANT "+f.group+" TO "+f.role); err != nil {
		t.Fatal(err)
	}
	var (
		n   int
		err error
	)
	f.revokeMeanwhile(t, func() { n, err = b.Reconcile(ctx) })
	if err != nil || n != 1 {
		t.Fatalf("Reconcile: %d revoked, %v; want 1, nil", n, err)
	}
	if f.member(t) {
		t.Error("the membership stayed")
	}
}
