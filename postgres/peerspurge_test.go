package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey/postgres"
)

// The gateway_peers records of replicas that died without closing their
// store (SIGKILL, a lost host) go an hour after their lease, also where no
// cancel request is ever forwarded (the only time they went before, so
// that they piled up, one per dead replica and gateway).
func TestDeadReplicasPeerRecordsGoWithoutCancels(t *testing.T) {
	ctx := context.Background()
	url := newURL(t)
	lease := 300 * time.Millisecond
	open(t, url, postgres.WithGrantLease(lease))
	raw, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close(ctx)
	if _, err := raw.Exec(ctx, `INSERT INTO gateway_peers (scope, owner, address, lease_until) VALUES
		('c', 'long gone', '10.0.0.4:5439', now() - interval '2 hours'), ('c', 'just died', '10.0.0.5:5439', now() - interval '1 second')`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*lease, "the record dead for two hours went", func() bool {
		var n int
		if err := raw.QueryRow(ctx, `SELECT count(*) FROM gateway_peers WHERE owner = 'long gone'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
	var n int
	if err := raw.QueryRow(ctx, `SELECT count(*) FROM gateway_peers WHERE owner = 'just died'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("the record dead for a second: %d (%v), want kept for the hour", n, err)
	}
}
