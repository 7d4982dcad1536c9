// Package groupcommit gives many goroutines one writer. Each Submit waits
// in a FIFO; the writer takes every op pending (up to a bound), commits
// them as one batch (one transaction, one flush) and answers each caller
// with its own result. Callers share flushes and none polls for a lock:
// each waits for at most the batch being committed and its own.
package groupcommit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
)

// ErrClosed is Submit's answer once Close has begun.
var ErrClosed = errors.New("groupcommit: writer closed")

// Writer runs commit on batches of ops from one goroutine.
type Writer[Op, Res any] struct {
	ops     chan *pending[Op, Res]
	mu      sync.RWMutex // Close against Submit's send
	closed  bool
	stopped chan struct{}
	commit  func([]Op) []Res
	max     int
	taken   atomic.Uint64
}

type pending[Op, Res any] struct {
	op  Op
	res Res
	// done is held from Submit until the writer has set res. A mutex, not
	// a channel the caller makes: a caller inside a testing/synctest bubble
	// would make a channel the writer, outside it, may not touch.
	done sync.Mutex
}

// New starts a writer whose FIFO holds queue ops and that commits at most
// max at a time. commit gets the ops in arrival order and returns one
// result for each, in order; it must answer every op (a failed batch fails
// each of its ops).
func New[Op, Res any](queue, max int, commit func(ops []Op) []Res) *Writer[Op, Res] {
	w := &Writer[Op, Res]{ops: make(chan *pending[Op, Res], queue), stopped: make(chan struct{}), commit: commit, max: max}
	go w.run()
	return w
}

// Submit queues op and waits for its batch's commit. ctx bounds the wait
// for a place in the FIFO; once queued, the outcome is always returned.
func (w *Writer[Op, Res]) Submit(ctx context.Context, op Op) (Res, error) {
	p := &pending[Op, Res]{op: op}
	p.done.Lock()
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		var zero Res
		return zero, ErrClosed
	}
	select {
	case w.ops <- p:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		var zero Res
		return zero, ctx.Err()
	}
	p.done.Lock() // until the writer unlocks it
	return p.res, nil
}

// Close answers what is queued, then stops the writer. Later Submits get
// ErrClosed.
func (w *Writer[Op, Res]) Close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.ops)
	}
	w.mu.Unlock()
	<-w.stopped
}

// Queued is how many ops wait in the FIFO.
func (w *Writer[Op, Res]) Queued() int { return len(w.ops) }

// Taken is how many ops the writer has taken from the FIFO (for tests that
// must know a batch is under way).
func (w *Writer[Op, Res]) Taken() uint64 { return w.taken.Load() }

func (w *Writer[Op, Res]) run() {
	defer close(w.stopped)
	batch := make([]*pending[Op, Res], 0, w.max)
	ops := make([]Op, 0, w.max)
	for {
		p, ok := <-w.ops
		if !ok {
			return
		}
		batch = append(batch[:0], p)
		w.taken.Add(1)
	drain:
		for len(batch) < w.max {
			select {
			case p, ok := <-w.ops:
				if !ok {
					break drain
				}
				batch = append(batch, p)
				w.taken.Add(1)
			default:
				break drain
			}
		}
		ops = ops[:0]
		for _, p := range batch {
			ops = append(ops, p.op)
		}
		results := w.commit(ops)
		for i, p := range batch {
			p.res = results[i]
			p.done.Unlock()
		}
		clear(batch)
		clear(ops)
	}
}
