// Cancel requests: each session's backend key is mapped to one of the
// gateway's own, which is all a client ever sees or sends.

package pgwire

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/shiftkey/shiftkey"
)

// cancelMissLimit is how many cancel requests naming no session one source
// may send within window; past it, its cancel requests are dropped unread
// until the window has passed. A cancel key's process ID is the backend's
// (pg_stat_activity shows it to every role), which leaves its 32-bit
// secret to guess, as with PostgreSQL itself: this bounds the guessing to
// about a hundred a minute per address. Clients that cancel a query just as
// it ends send a few such misses, not hundreds.
var cancelMissLimit = 100 // a variable for tests only

// registerCancel gives the session a key of the gateway's own, mapped to the
// backend's, so cancel requests never reveal or accept backend keys. The
// key's process ID is the backend's own: clients compare it with
// pg_backend_pid() and with the sender of a notification (to skip their own),
// and look their session up by it in pg_stat_activity. The secret is the
// gateway's, random bits as in PostgreSQL: 32 (protocol 3.0), or 256 for a
// client of protocol 3.2 (long), as PostgreSQL 18 gives its own.
func (g *Gateway) registerCancel(s *session, backend *pgproto3.BackendKeyData, long bool) *pgproto3.BackendKeyData {
	k := cancelKey{pid: backend.ProcessID, n: shortSecret}
	if long {
		k.n = longSecret
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for {
		rand.Read(k.secret[:k.n])
		// Taken only if another session on a backend with the same process
		// ID (another server) drew the same secret.
		if _, taken := g.cancels[k]; taken {
			continue
		}
		g.cancels[k] = s
		s.mu.Lock() // s.cancel is read under either lock (closeFor: s.mu)
		s.cancelID, s.cancel = k, backend
		s.mu.Unlock()
		return &pgproto3.BackendKeyData{ProcessID: backend.ProcessID, SecretKey: bytes.Clone(k.secret[:k.n])}
	}
}

// The lengths of the cancel secrets the gateway gives: protocol 3.0's, and
// 3.2's as PostgreSQL 18 draws them (the protocol allows up to 256 bytes).
const (
	shortSecret = 4
	longSecret  = 32
)

// cancelKey is a cancel key as g.cancels holds it: a comparable value, so
// that a login registers its key without building one on the heap.
type cancelKey struct {
	pid    uint32
	n      uint8 // the secret's length: shortSecret or longSecret
	secret [longSecret]byte
}

// cancelKeyOf is the cancel key of pid and secret; ok is false for a
// secret longer than any the gateway gives, which names no session.
func cancelKeyOf(pid uint32, secret []byte) (k cancelKey, ok bool) {
	if len(secret) > longSecret {
		return k, false
	}
	k.pid, k.n = pid, uint8(len(secret))
	copy(k.secret[:], secret)
	return k, true
}

// unregisterCancel forgets the session's key, if it has one: from then on
// neither its client's cancel requests nor a cut (closeFor) reach the
// backend, which may go to the pool and serve another session. It returns
// how many of the session's cancel requests are still on their way to the
// backend (cancelByKey): with any, the backend must not serve another.
func (g *Gateway) unregisterCancel(s *session) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	if s.cancel != nil {
		delete(g.cancels, s.cancelID)
		s.mu.Lock()
		s.cancel = nil
		s.mu.Unlock()
	}
	return s.cancelling
}

// forwardCancel sends from's CancelRequest on to the backend of the session
// whose gateway key it names. A key that names no session (ended, or never
// issued) is dropped without an answer, as PostgreSQL does; a source that
// sends too many of those has its cancel requests dropped for a while
// (cancelMissLimit). With Peers, a miss goes on to the other replicas.
func (g *Gateway) forwardCancel(from *session, m *pgproto3.CancelRequest) {
	log := g.logger().With("conn_id", from.id, "remote", from.remote)
	source, now := from.source, time.Now()
	if g.throttledCancels(log, source, now) {
		return
	}
	if g.cancelByKey(log, m.ProcessID, m.SecretKey, false) {
		g.observeCancel(shiftkey.CancelSent)
		return
	}
	log.Debug("cancel request for no session", "key_bytes", len(m.SecretKey))
	g.missedCancel(log, source, now)
	switch {
	case g.Peers == nil || len(m.SecretKey) != shortSecret && len(m.SecretKey) != longSecret:
		g.observeCancel(shiftkey.CancelNoSession)
	case g.forwardToPeers(log, m, source):
		// Counted by forwardToPeers once the peers took it or not.
	default:
		g.observeCancel(shiftkey.CancelNotForwarded)
	}
}

// throttledCancels reports, and counts, a cancel request dropped because
// source has sent too many naming no session (cancelMissLimit).
func (g *Gateway) throttledCancels(log *slog.Logger, source string, now time.Time) bool {
	if g.misses.count(source, now) < cancelMissLimit {
		return false
	}
	log.Debug("cancel request dropped: too many for no session from this address", "source", source)
	g.observeCancel(shiftkey.CancelThrottled)
	return true
}

// missedCancel counts a cancel request of source that named no session.
func (g *Gateway) missedCancel(log *slog.Logger, source string, now time.Time) {
	if g.misses.add(source, now) == cancelMissLimit {
		log.Warn("cancel requests throttled: too many for no session from this address", "source", source, "limit", cancelMissLimit, "window", window)
	}
}

// observeCancel tells the observer, when it counts them, how a cancel
// request ended.
func (g *Gateway) observeCancel(outcome string) {
	if o, ok := g.Observer.(shiftkey.CancelObserver); ok {
		o.Cancel(g.Cluster, outcome)
	}
}

// cancelByKey sends a cancel request to the backend of the session whose
// gateway key is pid and secret, and reports whether there is one.
func (g *Gateway) cancelByKey(log *slog.Logger, pid uint32, secret []byte, fromPeer bool) bool {
	k, ok := cancelKeyOf(pid, secret)
	if !ok {
		return false
	}
	g.mu.Lock()
	s := g.cancels[k]
	var key *pgproto3.BackendKeyData
	if s != nil {
		// Counted until the backend has taken the request (Cancel
		// returns): the session's backend is not pooled meanwhile
		// (release), or the cancel could stop the next session's query.
		key = s.cancel
		s.cancelling++
	}
	g.mu.Unlock()
	if s == nil {
		if fromPeer {
			log.Debug("peer cancel request for no session here")
		}
		return false
	}
	defer func() {
		g.mu.Lock()
		s.cancelling--
		g.mu.Unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.t.Backend.Cancel(ctx, key); err != nil {
		log.Warn("cancel forward failed", "target_conn_id", s.id, "from_peer", fromPeer, "error", err)
		return true
	}
	log.Info("cancel request forwarded", "target_conn_id", s.id, "from_peer", fromPeer)
	return true
}
