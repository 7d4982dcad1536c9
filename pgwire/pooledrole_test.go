package pgwire

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// A session that ran SET ROLE to its group and ended clean leaves its
// backend to the pool; the next session of the role, granted no group,
// takes that backend and runs as the role: a pooled backend carries no
// SET ROLE to a later session (after a group cut, say).
func TestPooledBackendKeepsNoSetRole(t *testing.T) {
	relays(t, func(t *testing.T, relay func(*Gateway)) {
		ctx := context.Background()
		g, addr, _, user, group := pooledRoleGateway(t, relay)
		s1 := loginAs(t, addr, "IAM:withgroup", g.DefaultDB)
		if _, err := s1.Exec(ctx, "SET ROLE "+pgx.Identifier{group}.Sanitize()); err != nil {
			t.Fatal(err)
		}
		var who string
		var pid1 int
		if err := s1.QueryRow(ctx, "SELECT current_user, pg_backend_pid()").Scan(&who, &pid1); err != nil || who != group {
			t.Fatalf("s1 runs as %q (%v), want %q", who, err, group)
		}
		closeToPool(t, g, s1)
		s2 := loginAs(t, addr, "IAM:nogroup", g.DefaultDB)
		var session, current string
		var pid2 int
		if err := s2.QueryRow(ctx, "SELECT session_user, current_user, pg_backend_pid()").Scan(&session, &current, &pid2); err != nil {
			t.Fatal(err)
		}
		if pid2 != pid1 {
			t.Fatalf("the second session did not take the pooled backend (pid %d, pooled %d)", pid2, pid1)
		}
		if session != user || current != user {
			t.Fatalf("the pooled backend's next session runs as %q/%q, want %q", session, current, user)
		}
	})
}
