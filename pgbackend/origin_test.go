package pgbackend_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/internal/pgtest"
	"github.com/shiftkey/shiftkey/pgbackend"
)

type grantRecorder struct {
	mu  sync.Mutex
	got []shiftkey.GrantChange
}

func (r *grantRecorder) Grant(e *shiftkey.GrantChange) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, *e)
}

// The grant a session's Prepare makes, and the revoke its Release makes,
// are reported as that session's: the origin its context carries.
func TestGrantEventsCarrySessionOrigin(t *testing.T) {
	srv := pgtest.Server(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, srv.ConnString(srv.Superuser(), "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	const role, group = "origin_user", "origin_group"
	defer admin.Exec(ctx, "DROP ROLE IF EXISTS "+role+", "+group)
	if _, err := admin.Exec(ctx, "CREATE ROLE "+group+" NOLOGIN"); err != nil {
		t.Fatal(err)
	}
	var rec grantRecorder
	b, err := pgbackend.New(ctx, pgbackend.Config{Host: srv.SocketDir(), Port: srv.Port(), AdminUser: srv.Superuser(), Scope: "c", Observer: &rec})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	origin := shiftkey.SessionOrigin{ConnID: 42, Source: "127.0.0.1:5000", CredentialID: "cred-42", PrincipalARN: "arn:aws:iam::123456789012:user/bob"}
	lease, _, err := b.Prepare(shiftkey.WithSessionOrigin(ctx, origin), role, true, []string{group})
	if err != nil {
		t.Fatal(err)
	}
	lease.Release(context.Background()) // as the gateway does at the session's end
	if len(rec.got) != 2 || !rec.got[0].Granted || rec.got[1].Granted {
		t.Fatalf("events %+v, want a grant then a revoke", rec.got)
	}
	for _, e := range rec.got {
		if e.Session != origin {
			t.Errorf("granted=%v reported for session %+v, want %+v", e.Granted, e.Session, origin)
		}
	}
}

// A grant's and a revoke's records carry the configured time (the
// server's: with replicas sharing PostgreSQL, the store's), not the
// machine's clock.
func TestGrantEventsCarryConfiguredTime(t *testing.T) {
	srv := pgtest.Server(t)
	ctx := context.Background()
	admin, err := pgx.Connect(ctx, srv.ConnString(srv.Superuser(), "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	const role, group = "clock_user", "clock_group"
	defer admin.Exec(ctx, "DROP ROLE IF EXISTS "+role+", "+group)
	if _, err := admin.Exec(ctx, "CREATE ROLE "+group+" NOLOGIN"); err != nil {
		t.Fatal(err)
	}
	var rec grantRecorder
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	b, err := pgbackend.New(ctx, pgbackend.Config{Host: srv.SocketDir(), Port: srv.Port(), AdminUser: srv.Superuser(), Scope: "c", Observer: &rec,
		Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	lease, _, err := b.Prepare(ctx, role, true, []string{group})
	if err != nil {
		t.Fatal(err)
	}
	lease.Release(context.Background())
	if len(rec.got) != 2 {
		t.Fatalf("events %+v, want a grant then a revoke", rec.got)
	}
	for _, e := range rec.got {
		if !e.Time.Equal(at) {
			t.Errorf("granted=%v reported at %v, want %v", e.Granted, e.Time, at)
		}
	}
}
