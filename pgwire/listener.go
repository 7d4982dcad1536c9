// The listener phase: accept, and admit within the limits (per gateway,
// per client address, logging in per address) or refuse with 53300.

package pgwire

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/relay"
)

// Serve accepts connections on l until Close.
func (g *Gateway) Serve(l net.Listener) error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return net.ErrClosed
	}
	g.ln = append(g.ln, l)
	if g.sessions == nil {
		g.sessions = map[*session]struct{}{}
		g.cancels = map[cancelKey]*session{}
	}
	if g.SaltIterations != nil {
		// Read now rather than at the first unknown login, which would
		// wait for it (and so answer a little later than a known one).
		g.wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			g.decoyCounts.get(ctx, g)
		})
	}
	g.mu.Unlock()
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if g.isClosed() {
				return nil
			}
			if !retryAccept(err) {
				return err
			}
			// Out of descriptors (or another passing failure): wait and
			// retry, as net/http does, rather than stop serving for good.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			g.logger().Warn("accept failed; retrying", "error", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		// The login's reads and writes are raw system calls (relay.RawIO).
		s := &session{g: g, t: g, raw: c, client: relay.RawIO(c), id: g.nextID.Add(1)}
		if g.fromProxy(c.RemoteAddr()) {
			s.proxied = true // counted against its client once the header names it
		} else {
			s.source = sourceOf(c.RemoteAddr())
		}
		g.mu.Lock()
		if g.closed {
			g.mu.Unlock()
			c.Close()
			return nil
		}
		if over := g.admitLocked(s); over != "" {
			g.mu.Unlock()
			g.refuse(c, over)
			continue
		}
		g.wg.Add(1)
		g.mu.Unlock()
		g.workers.start(s)
	}
}

// runSession runs s on a worker (workers.go) until it ends or is handed off.
func (g *Gateway) runSession(s *session) {
	if !s.run() {
		g.sessionDone(s)
	}
}

// Caps of a gateway whose fields are left 0.
const (
	// DefaultMaxConnections bounds client connections per gateway: each
	// holds two descriptors (client and backend) and, on the goroutine
	// relay, two goroutines.
	DefaultMaxConnections = 10000
	// DefaultMaxConnectionsPerSource bounds the connections of one client
	// address, so one host cannot take all of MaxConnections.
	DefaultMaxConnectionsPerSource = 256
	// DefaultMaxAuthPerSource bounds the connections of one address that
	// are still logging in. It leaves room for a pool that opens its
	// connections all at once.
	DefaultMaxAuthPerSource = 64
)

func (g *Gateway) maxConnections() int {
	return cmp.Or(g.MaxConnections, DefaultMaxConnections)
}

func (g *Gateway) maxConnectionsPerSource() int {
	return cmp.Or(g.MaxConnectionsPerSource, DefaultMaxConnectionsPerSource)
}

func (g *Gateway) maxAuthPerSource() int {
	return cmp.Or(g.MaxAuthPerSource, DefaultMaxAuthPerSource)
}

// refusalMessages are what a connection refused at each cap is told
// (53300), by the cap (shiftkey.RefusedCaps) that admitLocked names.
var refusalMessages = map[string]string{
	shiftkey.RefusedMaxConnections: "sorry, too many clients already",
	shiftkey.RefusedPerSource:      "sorry, too many connections from this address",
	shiftkey.RefusedAuthPerSource:  "sorry, too many logins in progress from this address",
}

// observeRefused tells the observer, when it counts them, the cap a
// connection was refused at.
func (g *Gateway) observeRefused(over string) {
	if o, ok := g.Observer.(shiftkey.RefusalObserver); ok {
		o.Refused(g.Cluster, over)
	}
}

// sourceUse is what one client address holds: connections, and those of
// them still logging in.
type sourceUse struct{ conns, auths int }

// admitLocked admits s (counting it as a session of its source, logging
// in), or returns the cap it is refused at. g.mu is held.
func (g *Gateway) admitLocked(s *session) string {
	if g.sessions == nil {
		g.sessions = map[*session]struct{}{}
		g.cancels = map[cancelKey]*session{}
	}
	if g.sources == nil {
		g.sources = map[string]*sourceUse{}
	}
	if len(g.sessions) >= g.maxConnections() {
		return shiftkey.RefusedMaxConnections
	}
	if s.source == "" { // from a proxy: its client is counted after its header
		g.sessions[s] = struct{}{}
		return ""
	}
	if over := g.admitSourceLocked(s); over != "" {
		return over
	}
	g.sessions[s] = struct{}{}
	return ""
}

// admitSourceLocked counts s against its source, logging in, or returns
// the source's cap it is over. g.mu is held.
func (g *Gateway) admitSourceLocked(s *session) string {
	key := budgetKey(s.source)
	u := g.sources[key]
	switch {
	case u != nil && u.conns >= g.maxConnectionsPerSource():
		return shiftkey.RefusedPerSource
	case u != nil && u.auths >= g.maxAuthPerSource():
		return shiftkey.RefusedAuthPerSource
	}
	if u == nil {
		u = &sourceUse{}
		g.sources[key] = u
	}
	s.counted = key
	u.conns++
	u.auths++
	s.authing = true
	return ""
}

// authDone stops counting s as logging in.
func (g *Gateway) authDone(s *session) {
	g.mu.Lock()
	g.authDoneLocked(s)
	g.mu.Unlock()
}

func (g *Gateway) authDoneLocked(s *session) {
	if !s.authing {
		return
	}
	s.authing = false
	if u := g.sources[s.counted]; u != nil {
		u.auths--
	} else {
		// Not expected: a miscount must not take the gateway down.
		g.logger().Error("session's source no longer counted", "conn_id", s.id, "source", s.source)
	}
}

// leaveLocked stops counting s against its source. g.mu is held.
func (g *Gateway) leaveLocked(s *session) {
	g.authDoneLocked(s)
	if s.counted == "" { // a proxy's connection that never named its client
		return
	}
	u := g.sources[s.counted]
	if u == nil {
		g.logger().Error("session's source no longer counted", "conn_id", s.id, "source", s.source)
		return
	}
	if u.conns--; u.conns == 0 {
		delete(g.sources, s.counted)
	}
}

// retryAccept reports whether an accept error passes: out of descriptors
// or memory, or a timeout.
func retryAccept(err error) bool {
	if errors.Is(err, net.ErrClosed) {
		return false
	}
	for _, e := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED, syscall.EINTR} {
		if errors.Is(err, e) {
			return true
		}
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Refused connections are answered by a few goroutines of the gateway's,
// not one per connection: a flood of them costs a queue slot and a
// descriptor each for at most refuseWait, and nothing once the queue is
// full (they are then answered at once, from the accept loop).
const (
	refusers    = 4
	refuseQueue = 256
	// refuseWait is how long a refused client may take to send its
	// startup packet (and the startup after an SSLRequest), counted from
	// accept: clients expect the error after it.
	refuseWait = time.Second
	// refuseWrite bounds writing the answer (a few dozen bytes to a socket
	// that has sent nothing yet: the kernel takes them at once).
	refuseWrite = 100 * time.Millisecond
)

type refusal struct {
	c        net.Conn
	msg      string
	deadline time.Time
}

// refusals is the refusing pool; its goroutines start with the first
// refusal and end with the gateway. Guarded by the gateway's mu, except
// the queue itself.
type refusals struct {
	queue   chan refusal
	done    chan struct{}
	stopped bool
	count   int64 // connections refused (tests)
}

// refuse answers c, over a cap, with 53300 and closes it.
func (g *Gateway) refuse(c net.Conn, over string) {
	g.observeRefused(over)
	msg := refusalMessages[over]
	g.mu.Lock()
	r := &g.refusals
	r.count++
	if r.stopped {
		g.mu.Unlock()
		c.Close()
		return
	}
	if r.queue == nil {
		r.queue, r.done = make(chan refusal, refuseQueue), make(chan struct{})
		for range refusers {
			go refuser(r.queue, r.done)
		}
	}
	queue := r.queue
	g.mu.Unlock()
	select {
	case queue <- refusal{c: c, msg: msg, deadline: time.Now().Add(refuseWait)}:
	default:
		answerRefusal(c, msg, false)
	}
	g.logger().Debug("connection refused", "remote", c.RemoteAddr().String(), "reason", msg)
}

// refusedCount is how many connections the gateway refused.
func (g *Gateway) refusedCount() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.refusals.count
}

// stop ends the refusing goroutines (which close what is queued). g.mu is
// held.
func (r *refusals) stop() {
	if !r.stopped && r.done != nil {
		close(r.done)
	}
	r.stopped = true
}

func refuser(queue chan refusal, done chan struct{}) {
	for {
		select {
		case r := <-queue:
			r.c.SetReadDeadline(r.deadline)
			answerRefusal(r.c, r.msg, true)
		case <-done:
			for {
				select {
				case r := <-queue:
					r.c.Close()
				default:
					return
				}
			}
		}
	}
}

// answerRefusal sends c a FATAL 53300 and closes it. With wait, the
// client's startup packet is read first (under c's read deadline), and an
// SSLRequest is declined, as clients expect the answer after their
// startup.
func answerRefusal(c net.Conn, msg string, wait bool) {
	defer c.Close()
	ssl := false
	if wait {
		var hdr [8]byte
		for range 2 { // an SSLRequest, then the startup packet
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				break
			}
			n := binary.BigEndian.Uint32(hdr[:4])
			if n < 8 || n > maxStartupLen {
				break
			}
			if _, err := io.CopyN(io.Discard, c, int64(n-8)); err != nil {
				break
			}
			if binary.BigEndian.Uint32(hdr[4:]) != codeSSLRequest || ssl {
				break
			}
			ssl = true
			c.SetWriteDeadline(time.Now().Add(refuseWrite))
			if _, err := c.Write([]byte{'N'}); err != nil {
				return
			}
		}
	}
	buf, _ := (&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: codeTooManyConnections, Message: msg}).Encode(nil)
	c.SetWriteDeadline(time.Now().Add(refuseWrite))
	c.Write(buf)
}

// sourceOf is the client address a connection counts against.
func sourceOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	return a.String()
}

// sourceCounts counts events per source address within a sliding window
// (reset when a source has been quiet for window).
type sourceCounts struct {
	mu       sync.Mutex
	sources  map[string]*sourceCount
	pruneAt  int       // the size at which quiet sources are next looked for
	prunedAt time.Time // when they last were
	scanned  int       // entries visited looking for them (tests)
}

type sourceCount struct {
	count int
	last  time.Time
}

const window = time.Minute

// maxTrackedSources bounds the sources counted one by one (some 150 bytes
// each): past it, within a window, new sources share one count
// (overflowSource). An attacker with that many /64s can make new clients
// share its budget while it lasts, but not grow the map without bound.
// A variable for tests only.
var maxTrackedSources = 100000

const overflowSource = "overflow"

// budgetKey is what a source is counted as: an IPv6 address by its /64
// (one host or subnet; one address each would give a /64 2^64 budgets),
// anything else as itself.
func budgetKey(source string) string {
	a, err := netip.ParseAddr(source)
	if err != nil || !a.Is6() || a.Is4In6() {
		return source
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
}

// add records an event from source and returns its count in the window.
func (c *sourceCounts) add(source string, now time.Time) int {
	source = budgetKey(source)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sources == nil {
		c.sources = map[string]*sourceCount{}
	}
	// Quiet sources are looked for as the map doubles, and once it is
	// full at most every second: not at every new source once it is big,
	// which took a scan of the map per event.
	full := len(c.sources) >= maxTrackedSources
	if len(c.sources) >= max(c.pruneAt, min(10000, maxTrackedSources)) && (!full || now.Sub(c.prunedAt) >= time.Second) {
		for k, f := range c.sources {
			c.scanned++
			if now.Sub(f.last) > window {
				delete(c.sources, k)
			}
		}
		c.prunedAt = now
		c.pruneAt = min(2*len(c.sources), maxTrackedSources)
	}
	if _, tracked := c.sources[source]; !tracked && len(c.sources) >= maxTrackedSources {
		source = overflowSource
	}
	f := c.sources[source]
	if f == nil || now.Sub(f.last) > window {
		f = &sourceCount{}
		c.sources[source] = f
	}
	f.count++
	f.last = now
	return f.count
}

// count is source's count in the window.
func (c *sourceCounts) count(source string, now time.Time) int {
	source = budgetKey(source)
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.sources[source]
	if f == nil && len(c.sources) >= maxTrackedSources {
		f = c.sources[overflowSource]
	}
	if f != nil && now.Sub(f.last) <= window {
		return f.count
	}
	return 0
}
