package pgwire

import (
	"context"
	"maps"
	"testing"
	"time"

	"github.com/shiftkey/shiftkey"
)

// cutAtEnd cuts (as a revoke with --terminate does) the sessions of
// credential id while the gateway reports a session's end: between the
// relay's verdict that the backend is clean and its release.
type cutAtEnd struct {
	g  *Gateway
	id string
}

func (cutAtEnd) APICall(*shiftkey.APICall)         {}
func (cutAtEnd) Login(*shiftkey.Login)             {}
func (cutAtEnd) Grant(*shiftkey.GrantChange)       {}
func (c cutAtEnd) SessionEnd(*shiftkey.SessionEnd) { c.g.Terminate(map[string]bool{c.id: true}) }

// A session that leaves clean but is cut as it ends is not pooled: its
// backend is closed, and the pool stops counting it as one being reset.
// The goroutine relay's end left the count up for ever, so every later
// login of the role that found no idle backend waited resetWait for one
// that never came.
func TestCutAtCleanEndLeavesNoResetPending(t *testing.T) {
	plainRelays(t, func(t *testing.T, relay func(*Gateway)) {
		g, addr := newGateway(t, func(g *Gateway) {
			relay(g)
			g.PoolSize = 2
			g.Observer = cutAtEnd{g: g, id: "x"}
		})
		c := mustLogin(t, addr)
		c.Close(context.Background())
		ended(t, g)
		// On io_uring the backend's hand-over (Keep) may come after the
		// session's end: the count falls once it has.
		var pending map[string]int
		settled := waitUntil(5*time.Second, func() bool {
			g.pool.mu.Lock()
			defer g.pool.mu.Unlock()
			pending = maps.Clone(g.pool.resetting)
			return len(pending) == 0
		})
		if !settled {
			t.Fatalf("after the session's end, the pool still counts %d backends being reset (%d pooled)", len(pending), g.pooledCount())
		}
	})
}
