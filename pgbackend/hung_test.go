package pgbackend_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// A backend that stops answering (its processes stopped: SIGSTOP, a
// network black hole) while a session that holds a group ends: the revoke
// waits on the admin connection, and it held the role's lock without a
// bound, so every later login of the role waited on that lock for good,
// past its own deadline (the client hung). The revoke is bounded, and a
// login waits for the role's lock no longer than its own context.
func TestHungBackendDoesNotWedgeTheRole(t *testing.T) {
	ctx := context.Background()
	srv, b, su := ownServer(t, "CREATE ROLE hung_grp NOLOGIN", "CREATE ROLE hung_user LOGIN")
	lease, _, err := b.Prepare(ctx, "hung_user", false, []string{"hung_grp"})
	if err != nil {
		t.Fatal(err)
	}
	if lease.Empty() {
		t.Fatal("the group was not granted")
	}
	// Stop the postmaster and the admin pool's backends: the admin
	// connections and any new one hang.
	rows, err := su.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE application_name = 'shiftkey-admin'")
	if err != nil {
		t.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil || len(pids) == 0 {
		t.Fatalf("admin backends %v: %v", pids, err)
	}
	pm, err := srv.PostmasterPID()
	if err != nil {
		t.Fatal(err)
	}
	stopped := []int{pm}
	for _, p := range pids {
		stopped = append(stopped, int(p))
	}
	for _, p := range stopped {
		if err := syscall.Kill(p, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			for _, p := range stopped {
				syscall.Kill(p, syscall.SIGCONT)
			}
		}
	}
	defer resume()
	t.Logf("stopped %v", stopped)

	released := make(chan struct{})
	go func() {
		lease.Release(context.Background())
		close(released)
	}()
	time.Sleep(200 * time.Millisecond) // the release holds the role's lock, waiting on the backend

	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	prepared := make(chan error, 1)
	go func() {
		l, _, err := b.Prepare(pctx, "hung_user", false, nil)
		if err == nil {
			l.Release(ctx)
		}
		prepared <- err
	}()
	select {
	case err := <-prepared:
		t.Logf("login of the role while the backend hangs: %v", err)
	case <-time.After(6 * time.Second):
		t.Fatal("a login of the role waited past its deadline on the lock of a revoke the hung backend holds")
	}
	select {
	case <-released:
	case <-time.After(30 * time.Second):
		t.Fatal("the revoke against the hung backend did not give up")
	}
	resume()
	// Answering again: the role's logins work.
	ctx2, cancel2 := context.WithTimeout(ctx, 30*time.Second)
	defer cancel2()
	l, _, err := b.Prepare(ctx2, "hung_user", false, []string{"hung_grp"})
	if err != nil {
		t.Fatalf("once the backend answers again: %v", err)
	}
	l.Release(ctx2)
}
