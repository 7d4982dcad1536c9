package pgbackend_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/pgbackend"
	"github.com/shiftkey/shiftkey/pgserver"
)

// ownServer is a PostgreSQL server of the test's own (one it may stop or
// restart), a Backend on it, and a superuser connection that ran stmts.
func ownServer(t *testing.T, stmts ...string) (*pgserver.Server, *pgbackend.Backend, *pgx.Conn) {
	t.Helper()
	srv := pgtest.Start(t)
	ctx := context.Background()
	b, err := pgbackend.New(ctx, pgbackend.Config{Host: srv.SocketDir(), Port: srv.Port(), AdminUser: srv.Superuser()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	su, err := pgx.Connect(ctx, srv.ConnString(srv.Superuser(), "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { su.Close(context.Background()) })
	for _, sql := range stmts {
		if _, err := su.Exec(ctx, sql); err != nil {
			t.Fatal(sql, err)
		}
	}
	return srv, b, su
}

// The backend restarts (pg_ctl restart -m fast) between two logins that
// need a grant: the admin pool's connections died with it, and the first
// login after it must not fail on one of them (it was used a moment
// before, so the pool would not ping it).
func TestPrepareRightAfterRestart(t *testing.T) {
	ctx := context.Background()
	srv, b, _ := ownServer(t, "CREATE ROLE restart_grp NOLOGIN", "CREATE ROLE restart_user LOGIN")
	for _, mode := range []string{"fast", "immediate"} {
		lease, _, err := b.Prepare(ctx, "restart_user", false, []string{"restart_grp"})
		if err != nil {
			t.Fatal(err)
		}
		lease.Release(ctx)
		if err := srv.Restart(ctx, mode); err != nil {
			t.Fatal(err)
		}
		lease, _, err = b.Prepare(ctx, "restart_user", false, []string{"restart_grp"})
		if err != nil {
			t.Fatalf("the first login needing a grant after a restart (-m %s): %v", mode, err)
		}
		if lease.Empty() {
			t.Fatalf("after the restart (-m %s) the group was not granted", mode)
		}
		lease.Release(ctx)
	}
}
