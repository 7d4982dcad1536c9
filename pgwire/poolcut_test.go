package pgwire

import (
	"context"
	"maps"
	"testing"

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
		g.pool.mu.Lock()
		pending := maps.Clone(g.pool.resetting)
		g.pool.mu.Unlock()
		if len(pending) > 0 {
			t.Fatalf("after the session's end, the pool still counts %d backends being reset (%d pooled)", len(pending), g.pooledCount())
		}
	})
}
