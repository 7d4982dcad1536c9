package pgbackend

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// RoleExistsTTL is roleExistsTTL, for tests.
const RoleExistsTTL = roleExistsTTL

// SetClock replaces the clock of b's role-exists cache.
func SetClock(b *Backend, now func() time.Time) { b.now = now }

// UserStates is how many roles b keeps state for.
func UserStates(b *Backend) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.users)
}

// SetMaxUserStates sets the bound on the per-role state for the test.
func SetMaxUserStates(t interface{ Cleanup(func()) }, n int) {
	old := maxUserStates
	maxUserStates = n
	t.Cleanup(func() { maxUserStates = old })
}

// MembershipLockKey is the advisory lock key of role's membership of group.
func MembershipLockKey(role, group string) int64 { return membershipLockKey(role, group) }

// OutlivesFor is outlivesFor, for tests: how long a group's verdict, and
// what each database's catalogs say, are reused.
const OutlivesFor = outlivesFor

// SetCutReadTimeout bounds HearCuts' reads of the cuts for the test.
func SetCutReadTimeout(t interface{ Cleanup(func()) }, d time.Duration) {
	old := cutReadTimeout
	cutReadTimeout = d
	t.Cleanup(func() { cutReadTimeout = old })
}

// ConnString is connString, for tests.
var ConnString = connString

// Unsafe is b's judgement of group as a re-check makes it (unsafe), read
// on q.
func Unsafe(ctx context.Context, b *Backend, q *pgx.Conn, group string) (string, error) {
	return b.unsafe(ctx, q, group)
}

// Nudge runs b's membership-cache nudge now.
func Nudge(b *Backend) { b.nudge() }

// NudgeAfter is nudgeAfter, for tests.
const NudgeAfter = nudgeAfter
