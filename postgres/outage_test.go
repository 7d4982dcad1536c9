package postgres_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/postgres"
)

// The store tells its outages (answered ServiceUnavailable, retried by
// clients) from its bugs and its callers' mistakes (InternalFailure or
// their own AWS error), on errors a real PostgreSQL gives.
func TestOutagesAreToldFromFailedStatements(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TEMP TABLE t (id int PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	statement := map[string]error{}
	_, statement["bad SQL"] = conn.Exec(ctx, `SELEC 1`)
	_, statement["unique violation"] = conn.Exec(ctx, `INSERT INTO t VALUES (1), (1)`)
	_, statement["division by zero"] = conn.Exec(ctx, `SELECT 1/0`)
	for what, err := range statement {
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		if errors.Is(postgres.Classify(err), shiftkey.ErrStoreUnavailable) {
			t.Errorf("%s (%v) classified as the store being unavailable", what, err)
		}
	}

	outage := map[string]error{}
	_, outage["connection refused"] = pgx.Connect(ctx, "host=127.0.0.1 port=1 user=x dbname=x sslmode=disable connect_timeout=5")
	_, outage["no server on the socket"] = pgx.Connect(ctx, "host="+t.TempDir()+" port=5432 user=x dbname=x sslmode=disable")
	// The server's own deadlines on a statement kept waiting.
	if _, err := conn.Exec(ctx, `SET statement_timeout = 50`); err != nil {
		t.Fatal(err)
	}
	_, outage["statement_timeout (57014)"] = conn.Exec(ctx, `SELECT pg_sleep(5)`)
	if _, err := conn.Exec(ctx, `SET statement_timeout = 0; SET lock_timeout = 50`); err != nil {
		t.Fatal(err)
	}
	locker, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close(ctx)
	if _, err := locker.Exec(ctx, `SELECT pg_advisory_lock(42)`); err != nil {
		t.Fatal(err)
	}
	_, outage["lock_timeout (55P03)"] = conn.Exec(ctx, `SELECT pg_advisory_lock(42)`)
	killer, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer killer.Close(ctx)
	if _, err := killer.Exec(ctx, `SELECT pg_terminate_backend($1)`, conn.PgConn().PID()); err != nil {
		t.Fatal(err)
	}
	_, outage["connection terminated by an administrator (57P01)"] = conn.Exec(ctx, `SELECT 1`)
	for what, err := range outage {
		if err == nil {
			t.Fatalf("%s: no error", what)
		}
		if !errors.Is(postgres.Classify(err), shiftkey.ErrStoreUnavailable) {
			t.Errorf("%s (%v) not classified as the store being unavailable", what, err)
		}
	}
	// The context's end keeps its own answer (the request's deadline).
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := killer.Exec(cctx, `SELECT 1`); err == nil || errors.Is(postgres.Classify(err), shiftkey.ErrStoreUnavailable) {
		t.Errorf("a cancelled call (%v) classified as the store being unavailable", err)
	}
}
