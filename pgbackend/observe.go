package pgbackend

import (
	"context"
	"time"

	"github.com/shiftkey/shiftkey"
)

// Observer hears of session grants and revokes as they are made.
type Observer interface {
	Grant(*shiftkey.GrantChange)
}

// observe reports a grant or revoke caused by the session origin names
// (zero: the sweep's), and for a revoke of a group that turned unsafe, why
// (reconcileOne reports its revokes of leftovers itself).
func (b *Backend) observe(role, group string, granted bool, origin shiftkey.SessionOrigin, reason string) {
	if b.cfg.Observer == nil {
		return
	}
	b.cfg.Observer.Grant(&shiftkey.GrantChange{Time: b.recordTime(), Scope: b.cfg.Scope, Region: b.cfg.Region, Role: role, Group: group, Granted: granted,
		Session: origin, Reason: reason})
}

// recordTime is the time a grant's or revoke's record carries.
func (b *Backend) recordTime() time.Time {
	if b.cfg.Now != nil {
		return b.cfg.Now()
	}
	return time.Now()
}

// GrantsHeld is how many session group memberships this process holds on
// the backend for live sessions (each role and group once, however many
// sessions share it). A membership shared with another replica's sessions
// counts on each replica holding it, so the sum over replicas can exceed
// the memberships granted in PostgreSQL.
func (b *Backend) GrantsHeld() int { return int(b.held.Load()) }

// Ping reports whether the backend answers its admin pool (readiness).
func (b *Backend) Ping(ctx context.Context) error { return b.admin.Ping(ctx) }
