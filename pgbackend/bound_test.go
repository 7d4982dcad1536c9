package pgbackend_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/pgbackend"
)

// Finding 7: the per-role state is bounded. After logins of many distinct
// roles it holds at most the bound, and the state of a role whose session
// holds a group is never dropped from under it: the group is still
// revoked when that session ends.
func TestFinding7UserStateIsBounded(t *testing.T) {
	const bound = 8
	pgbackend.SetMaxUserStates(t, bound)
	srv := pgtest.Server(t)
	db := pgtest.NewDatabase(t)
	ctx := context.Background()
	b, err := pgbackend.New(ctx, pgbackend.Config{Host: srv.SocketDir(), Port: srv.Port(), AdminUser: srv.Superuser(), AdminDatabase: db})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	admin, err := pgx.Connect(ctx, srv.ConnString(srv.Superuser(), db))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE ROLE bound_readers NOLOGIN"); err != nil && !pgtestDuplicate(err) {
		t.Fatal(err)
	}
	held, _, err := b.Prepare(ctx, "bound_keeper", true, []string{"bound_readers"})
	if err != nil {
		t.Fatal(err)
	}
	member := func() bool { return pgtest.Member(t, admin, "bound_keeper", "bound_readers") }
	if !member() {
		t.Fatal("the group was not granted")
	}
	for i := range 100 {
		lease, _, err := b.Prepare(ctx, fmt.Sprintf("bound_role_%d", i), false, nil)
		if err != nil {
			t.Fatal(err)
		}
		lease.Release(ctx)
		if n := pgbackend.UserStates(b); n > bound {
			t.Fatalf("after %d distinct roles, state kept for %d, want at most %d", i+1, n, bound)
		}
	}
	// A second session of the keeper shares the grant; ending the first
	// keeps it, ending the second revokes it.
	second, _, err := b.Prepare(ctx, "bound_keeper", true, []string{"bound_readers"})
	if err != nil {
		t.Fatal(err)
	}
	held.Release(ctx)
	if !member() {
		t.Fatal("the group was revoked while a session of the role still holds it")
	}
	second.Release(ctx)
	if member() {
		t.Fatal("the group outlived the last session holding it")
	}
}

func pgtestDuplicate(err error) bool {
	pe, ok := errors.AsType[*pgconn.PgError](err)
	return ok && pe.Code == "42710"
}
