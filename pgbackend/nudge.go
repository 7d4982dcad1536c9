package pgbackend

import (
	"context"
	"sync"
	"time"
)

// nudgeAfter is how long after its last REVOKE the backend changes its
// marker role: long enough for a privilege check that was reading the
// role's memberships as the REVOKE committed to have stored its list.
const nudgeAfter = 100 * time.Millisecond

// nudger runs a backend's nudges: at most one pending, put off by each
// REVOKE until nudgeAfter after the last one.
type nudger struct {
	mu      sync.Mutex
	timer   *time.Timer
	pending bool      // a nudge is due that no one has begun
	due     time.Time // when: nudgeAfter after the last REVOKE
	stopped bool
	running sync.WaitGroup
	warned  bool
}

// revoke revokes role's membership of group and has the marker role
// changed shortly after, when the REVOKE succeeded.
//
// A backend process keeps the roles a role belongs to, read once, until a
// role or membership changes on the server. One that was reading them
// while a REVOKE committed can keep the list from before it (PostgreSQL
// 15.18, and later versions' code alike): a session of the role then kept
// the revoked group's privileges until some other GRANT, REVOKE or ALTER
// ROLE on the server, however late. The marker's change makes every
// backend read memberships again; made after such a read has ended, it
// ends the privileges it kept.
func (b *Backend) revoke(ctx context.Context, q adminQuerier, role, group string) error {
	err := b.changeMembership(ctx, q, "REVOKE "+quote(group)+" FROM "+quote(role))
	if err == nil {
		b.nudgeLater()
	}
	return err
}

// nudgeLater puts the nudge off until nudgeAfter from now, arming the
// timer when no nudge is pending; an armed timer that fires early waits
// out the rest.
func (b *Backend) nudgeLater() {
	n := &b.nudges
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stopped {
		return
	}
	n.due = time.Now().Add(nudgeAfter)
	if n.pending {
		return
	}
	n.pending = true
	if n.timer == nil {
		n.timer = time.AfterFunc(nudgeAfter, b.nudgeDue)
		return
	}
	n.timer.Reset(nudgeAfter)
}

// nudgeDue runs when the timer fires: the nudge, unless stop took it or a
// REVOKE since put it off.
func (b *Backend) nudgeDue() {
	n := &b.nudges
	n.mu.Lock()
	if !n.pending {
		n.mu.Unlock()
		return
	}
	if wait := time.Until(n.due); wait > 0 {
		n.timer.Reset(wait)
		n.mu.Unlock()
		return
	}
	n.pending = false
	n.running.Add(1)
	n.mu.Unlock()
	defer n.running.Done()
	b.nudge()
}

// nudge changes the marker role (to what it is): a new catalog row, which
// every backend process hears of. Its failure is logged once as a warning
// (the marker's owner may have taken the admin role's rights on it), then
// at debug level.
func (b *Backend) nudge() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := b.admin.Exec(ctx, "ALTER ROLE "+quote(ManagedRole)+" NOLOGIN")
	if err == nil || concurrentlyChanged(err) { // another replica's nudge changed it: as good
		return
	}
	n := &b.nudges
	n.mu.Lock()
	first := !n.warned
	n.warned = true
	n.mu.Unlock()
	if first {
		b.logger.WarnContext(ctx, "marker role change after a revoke failed; sessions that read memberships as a REVOKE committed may keep the group's privileges until the next role change on the server", "role", ManagedRole, "error", err)
		return
	}
	b.logger.DebugContext(ctx, "marker role change after a revoke failed", "role", ManagedRole, "error", err)
}

// stop ends the nudges: none starts after it returns, and a running one
// has finished. It reports whether one was pending, which the caller
// makes now: a backend closed right after a REVOKE still ends what a
// racing read kept.
func (n *nudger) stop() (pending bool) {
	n.mu.Lock()
	n.stopped = true
	if n.timer != nil {
		n.timer.Stop()
	}
	pending, n.pending = n.pending, false
	n.mu.Unlock()
	n.running.Wait()
	return pending
}
