package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Member reports whether role belongs to group, directly or through other
// roles, as pg_auth_members says when the statement runs. Tests ask it
// rather than pg_has_role, which answers from the connection's cache of the
// last role it was asked about: PostgreSQL can fill that cache while a
// change of the role's memberships commits and keep the stale answer until
// the next membership change on the server, so a poll on a long-lived
// connection never saw a revoke that had long been done.
func Member(tb testing.TB, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, role, group string) bool {
	tb.Helper()
	var ok bool
	err := q.QueryRow(context.Background(), `WITH RECURSIVE above(oid) AS (
			SELECT m.roleid FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles r ON r.oid = m.member WHERE r.rolname = $1
			UNION SELECT m.roleid FROM pg_catalog.pg_auth_members m JOIN above ON m.member = above.oid)
		SELECT EXISTS (SELECT 1 FROM above JOIN pg_catalog.pg_roles g ON g.oid = above.oid WHERE g.rolname = $2)`, role, group).Scan(&ok)
	if err != nil {
		tb.Fatalf("is %s a member of %s: %v", role, group, err)
	}
	return ok
}
