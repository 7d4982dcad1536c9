package pgbackend_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/pgbackend"
)

// Found in review: a login while the backend was starting up (57P03,
// "the database system is starting up") failed at once with that error,
// though the backend would accept it a moment later (a restart, a
// failover). Prepare (the admin pool's connections) and Connect (the
// session's) now try again every few hundred ms within the login's
// deadline, and succeed once the backend accepts connections.
func TestLoginWaitsForBackendStartingUp(t *testing.T) {
	srv, b, su := ownServer(t, "CREATE ROLE up_grp NOLOGIN", "CREATE ROLE up_user LOGIN")
	su.Close(context.Background())
	pgtest.PgCtl(t, srv, "stop", "-m", "fast", "-w", "-t", "60", "-s")
	pgtest.StartInRecovery(t, srv)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type result struct {
		lease *pgbackend.Lease
		conn  *pgbackend.Conn
		err   error
	}
	done := make(chan result, 1)
	go func() {
		lease, _, err := b.Prepare(ctx, "up_user", false, []string{"up_grp"})
		if err != nil {
			done <- result{err: err}
			return
		}
		c, err := b.Connect(ctx, "up_user", "postgres", nil)
		done <- result{lease, c, err}
	}()
	// Without waiting, the login failed within milliseconds.
	select {
	case r := <-done:
		t.Fatalf("the login returned while the backend was starting up: %v", r.err)
	case <-time.After(time.Second):
	}
	pgtest.PgCtl(t, srv, "promote", "-w", "-t", "60", "-s")
	r := <-done
	if r.err != nil {
		t.Fatalf("the login during the backend's startup, once it accepts connections: %v", r.err)
	}
	defer r.lease.Release(context.Background())
	r.conn.Conn.Close()
	if r.lease.Empty() {
		t.Error("the group was not granted")
	}
}

// A backend that stays in startup past the login's deadline: the login
// fails then, with the backend's own answer (SQLSTATE 57P03), not a
// timeout of the gateway's.
func TestLoginGivesUpOnBackendStartingUp(t *testing.T) {
	srv, b, su := ownServer(t, "CREATE ROLE up_user LOGIN")
	su.Close(context.Background())
	// Connect's case: the role is known (cached) from a Prepare before.
	lease, _, err := b.Prepare(context.Background(), "up_user", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	lease.Release(context.Background())
	pgtest.PgCtl(t, srv, "stop", "-m", "fast", "-w", "-t", "60", "-s")
	pgtest.StartInRecovery(t, srv)
	for _, step := range []struct {
		name string
		do   func(ctx context.Context) error
	}{
		{"Connect", func(ctx context.Context) error {
			c, err := b.Connect(ctx, "up_user", "postgres", nil)
			if err == nil {
				c.Conn.Close()
			}
			return err
		}},
		{"Prepare", func(ctx context.Context) error {
			lease, _, err := b.Prepare(ctx, "other_user", false, nil)
			if err == nil {
				lease.Release(ctx)
			}
			return err
		}},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		start := time.Now()
		err := step.do(ctx)
		cancel()
		took := time.Since(start)
		se, ok := errors.AsType[*pgbackend.StartupError](err)
		if !ok || se.Response.Code != "57P03" {
			t.Errorf("%s with the backend starting up past the deadline: %v; want the backend's 57P03 (a StartupError)", step.name, err)
		}
		if took < time.Second || took > 2*time.Second {
			t.Errorf("%s gave up after %v; want after trying until near its 2 s deadline", step.name, took)
		}
	}
}

// A backend starting up when the gateway starts does not stop the start
// (as one that is down does not, TestBackendDownAtStart): its logins wait
// for it, and work once it accepts connections.
func TestBackendStartingUpAtStart(t *testing.T) {
	srv := pgtest.Start(t)
	pgtest.PgCtl(t, srv, "stop", "-m", "fast", "-w", "-t", "60", "-s")
	pgtest.StartInRecovery(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := pgbackend.New(ctx, pgbackend.Config{Host: srv.SocketDir(), Port: srv.Port(), AdminUser: srv.Superuser()})
	if err != nil {
		t.Fatalf("New with the backend starting up: %v", err)
	}
	defer b.Close()
	pgtest.PgCtl(t, srv, "promote", "-w", "-t", "60", "-s")
	su, err := pgx.Connect(ctx, srv.ConnString(srv.Superuser(), "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer su.Close(ctx)
	if _, err := su.Exec(ctx, "CREATE ROLE late_grp NOLOGIN; CREATE ROLE late_user LOGIN"); err != nil {
		t.Fatal(err)
	}
	lease, _, err := b.Prepare(ctx, "late_user", false, []string{"late_grp"})
	if err != nil {
		t.Fatalf("Prepare once the backend is up: %v", err)
	}
	defer lease.Release(ctx)
	if lease.Empty() {
		t.Error("the group was not granted")
	}
}
