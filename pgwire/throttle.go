package pgwire

import (
	"net"
	"sync"
	"time"
)

// throttle slows down repeated authentication failures from one source
// address: after freeFailures within window, each further failure answers
// after a delay that doubles up to maxDelay.
type throttle struct {
	mu      sync.Mutex
	sources map[string]*failures
	total   uint64
}

type failures struct {
	count int
	last  time.Time
}

const (
	freeFailures = 5
	window       = time.Minute
	baseDelay    = 100 * time.Millisecond
	maxDelay     = 5 * time.Second
)

func sourceOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	return a.String()
}

// fail records a failure from source and returns how long to wait before
// answering it.
func (t *throttle) fail(source string, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.sources == nil {
		t.sources = map[string]*failures{}
	}
	t.total++
	if len(t.sources) > 10000 {
		for k, f := range t.sources {
			if now.Sub(f.last) > window {
				delete(t.sources, k)
			}
		}
	}
	f := t.sources[source]
	if f == nil || now.Sub(f.last) > window {
		f = &failures{}
		t.sources[source] = f
	}
	f.count++
	f.last = now
	if f.count <= freeFailures {
		return 0
	}
	d := baseDelay << min(f.count-freeFailures-1, 10)
	return min(d, maxDelay)
}

// Failures is the number of failed logins since the gateway started.
func (g *Gateway) Failures() uint64 {
	g.throttle.mu.Lock()
	defer g.throttle.mu.Unlock()
	return g.throttle.total
}

// cancelMissLimit is how many cancel requests naming no session one source
// may send within window; past it, its cancel requests are dropped unread
// until the window has passed. A cancel key's process ID is the backend's
// (pg_stat_activity shows it to every role), which leaves its 32-bit
// secret to guess, as with PostgreSQL itself: this bounds the guessing to
// about a hundred a minute per address. Clients that cancel a query just as
// it ends send a few such misses, not hundreds.
var cancelMissLimit = 100 // a variable for tests only

// cancelMisses counts cancel requests that named no session, per source.
type cancelMisses struct {
	mu      sync.Mutex
	sources map[string]*failures
}

// blocked reports whether source has used up its misses in this window.
func (c *cancelMisses) blocked(source string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := c.sources[source]
	return f != nil && now.Sub(f.last) <= window && f.count >= cancelMissLimit
}

// miss records a miss from source; it reports whether that used up the
// source's misses for the window.
func (c *cancelMisses) miss(source string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sources == nil {
		c.sources = map[string]*failures{}
	}
	if len(c.sources) > 10000 {
		for k, f := range c.sources {
			if now.Sub(f.last) > window {
				delete(c.sources, k)
			}
		}
	}
	f := c.sources[source]
	if f == nil || now.Sub(f.last) > window {
		f = &failures{}
		c.sources[source] = f
	}
	f.count++
	f.last = now
	return f.count == cancelMissLimit
}
