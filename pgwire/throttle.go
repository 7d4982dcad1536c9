package pgwire

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// sourceCounts counts events per source address within a sliding window
// (reset when a source has been quiet for window).
type sourceCounts struct {
	mu      sync.Mutex
	sources map[string]*sourceCount
}

type sourceCount struct {
	count int
	last  time.Time
}

const window = time.Minute

// add records an event from source and returns its count in the window.
func (c *sourceCounts) add(source string, now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sources == nil {
		c.sources = map[string]*sourceCount{}
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
		f = &sourceCount{}
		c.sources[source] = f
	}
	f.count++
	f.last = now
	return f.count
}

// count is source's count in the window.
func (c *sourceCounts) count(source string, now time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f := c.sources[source]; f != nil && now.Sub(f.last) <= window {
		return f.count
	}
	return 0
}

// throttle slows down repeated authentication failures from one source
// address: after freeFailures within window, each further failure answers
// after a delay that doubles up to maxDelay.
type throttle struct {
	sourceCounts
	total atomic.Uint64
}

const (
	freeFailures = 5
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
	n := t.add(source, now)
	t.total.Add(1)
	if n <= freeFailures {
		return 0
	}
	return min(baseDelay<<min(n-freeFailures-1, 10), maxDelay)
}

// Failures is the number of failed logins since the gateway started.
func (g *Gateway) Failures() uint64 { return g.throttle.total.Load() }

// cancelMissLimit is how many cancel requests naming no session one source
// may send within window; past it, its cancel requests are dropped unread
// until the window has passed. A cancel key's process ID is the backend's
// (pg_stat_activity shows it to every role), which leaves its 32-bit
// secret to guess, as with PostgreSQL itself: this bounds the guessing to
// about a hundred a minute per address. Clients that cancel a query just as
// it ends send a few such misses, not hundreds.
var cancelMissLimit = 100 // a variable for tests only
