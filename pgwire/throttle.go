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
