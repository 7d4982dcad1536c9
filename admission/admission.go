// Package admission bounds how many requests do their CPU work at once.
// On a machine with few cores, many requests running together all finish
// late (each gets a share of the cores) and starve the serial parts they
// later wait for (the store's group writer). A Gate lets n of them run and
// queues the rest in arrival order, so that they finish in that order.
//
// A request leaves the gate as soon as its CPU work is done, before it
// waits for anything a gated request might hold up (a commit): a waiter
// never holds a place that the one it waits for needs.
package admission

import (
	"container/list"
	"context"
	"sync"
)

// Gate admits at most n holders at once; the others wait in a FIFO.
type Gate struct {
	mu      sync.Mutex
	free    int
	waiters list.List // of chan struct{}, oldest first; closed when admitted
}

// New is a gate of n places (at least one).
func New(n int) *Gate {
	return &Gate{free: max(n, 1)}
}

// Enter waits for a place, behind every caller already waiting. A caller
// whose ctx ends while it waits leaves the queue and gets ctx's error; it
// holds no place then. After a nil error the caller must Leave once.
func (g *Gate) Enter(ctx context.Context) error {
	g.mu.Lock()
	if g.free > 0 && g.waiters.Len() == 0 {
		g.free--
		g.mu.Unlock()
		return nil
	}
	admitted := make(chan struct{})
	e := g.waiters.PushBack(admitted)
	g.mu.Unlock()
	select {
	case <-admitted:
		return nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	select {
	case <-admitted:
		// Admitted while giving up: the place goes to the next one.
		g.mu.Unlock()
		g.Leave()
	default:
		g.waiters.Remove(e)
		g.mu.Unlock()
	}
	return ctx.Err()
}

// Leave gives the caller's place to the oldest waiter, if any.
func (g *Gate) Leave() {
	g.mu.Lock()
	if e := g.waiters.Front(); e != nil {
		g.waiters.Remove(e)
		close(e.Value.(chan struct{}))
	} else {
		g.free++
	}
	g.mu.Unlock()
}

// Waiting is how many callers wait for a place.
func (g *Gate) Waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waiters.Len()
}
