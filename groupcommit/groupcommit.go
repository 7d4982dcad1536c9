// Package groupcommit gives many goroutines one writer. Each Submit waits
// in a FIFO; the writer takes every op pending (up to a bound), commits
// them as one batch (one transaction, one flush) and answers each caller
// with its own result. Callers share flushes and none polls for a lock:
// each waits for at most the batch being committed and its own.
//
// With Gather, callers may announce an op before they have it (Expect):
// a writer that would commit a small batch while announced ops are still
// coming waits briefly for them, so that they share its flush instead of
// each paying one. Without announcements it never waits.
package groupcommit

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"
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

	// Gather (zero window: off).
	window time.Duration
	target int
	ann    announcements
	// inTransit counts Submits that took an announcement (or might
	// have) and whose op the writer has not received yet: the op is
	// coming though no announcement says so any more.
	inTransit atomic.Int64
	commitAvg time.Duration // the writer's goroutine only: a moving average
	gathered  atomic.Uint64 // ops a wait brought into a batch (tests, benchmarks)
	timeouts  atomic.Uint64 // waits that ended at their deadline (tests)

	beforeGather func() // tests: runs between a batch's drain and its gather
}

// Option adjusts a Writer.
type Option func(*options)

// GatherAnnounced is Gather as both stores' issue writers use it: an
// issue announces its credential when it has its login's salt, one key
// derivation before it submits it, so a batch of fewer than 8 waits at
// most 5 ms (and at most the writer's recent commit time) for those.
func GatherAnnounced() Option { return Gather(5*time.Millisecond, 8) }

type options struct {
	window time.Duration
	target int
}

// Gather makes the writer wait, before committing a batch smaller than
// target, for ops announced with Expect and not yet submitted: at most
// window, and at most the time its commits have lately taken. Waiting
// less than one commit costs the batch's callers less than it saves the
// ones who would otherwise wait for this commit and then pay their own.
func Gather(window time.Duration, target int) Option {
	return func(o *options) { o.window, o.target = window, target }
}

type pending[Op, Res any] struct {
	op  Op
	res Res
	// done is held from Submit until the writer has set res, or the
	// caller's context ended first. A mutex, not a channel the caller
	// makes: a caller inside a testing/synctest bubble would make a
	// channel the writer, outside it, may not touch.
	done sync.Mutex
	// state says who unlocks done: the writer (answered) or the caller's
	// context (abandoned), whichever comes first.
	state atomic.Int32
	// inTransit: counted in the writer's inTransit until the writer
	// receives it (or its Submit gives up before sending it).
	inTransit bool
}

const (
	waiting int32 = iota
	answered
	abandoned
)

// New starts a writer whose FIFO holds queue ops and that commits at most
// max at a time. commit gets the ops in arrival order and returns one
// result for each, in order; it must answer every op (a failed batch fails
// each of its ops).
func New[Op, Res any](queue, max int, commit func(ops []Op) []Res, opts ...Option) *Writer[Op, Res] {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	w := &Writer[Op, Res]{ops: make(chan *pending[Op, Res], queue), stopped: make(chan struct{}), commit: commit, max: max,
		window: o.window, target: min(o.target, max), commitAvg: o.window}
	go w.run()
	return w
}

// Expect announces that the caller will Submit an op soon (e.g. once it
// has computed it). It is a hint: an announcement never followed by a
// Submit costs at most one wait, and is forgotten after expireAfter.
func (w *Writer[Op, Res]) Expect() {
	if w.window > 0 {
		w.ann.add(time.Now())
	}
}

// expireAfter is how long an announcement is waited for at most: an
// announcer slower than that (or one that gave up) is not waited for.
const expireAfter = 50 * time.Millisecond

// announcements are the times of announced ops not yet submitted, oldest
// first. A Submit takes the oldest, its own or not: announcers finish in
// about the order they announced.
type announcements struct {
	mu    sync.Mutex
	times []time.Time
}

func (a *announcements) add(t time.Time) {
	a.mu.Lock()
	a.times = append(a.times, t)
	a.mu.Unlock()
}

func (a *announcements) take() {
	a.mu.Lock()
	if len(a.times) > 0 {
		a.times = a.times[1:]
	}
	a.mu.Unlock()
}

// coming drops what was announced before since and counts the rest.
func (a *announcements) coming(since time.Time) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	i := 0
	for i < len(a.times) && a.times[i].Before(since) {
		i++
	}
	if i > 0 {
		a.times = append(a.times[:0], a.times[i:]...)
	}
	return len(a.times)
}

// Coming is how many announced ops have not been submitted (and not
// forgotten) yet.
func (w *Writer[Op, Res]) Coming() int { return w.ann.coming(time.Now().Add(-expireAfter)) }

// Gathered is how many ops joined a batch while its writer waited for
// them (Gather).
func (w *Writer[Op, Res]) Gathered() uint64 { return w.gathered.Load() }

// Submit queues op and waits for its batch's commit, or until ctx ends:
// then it returns ctx's error, and the op, if the writer has not taken it
// into a batch yet, is dropped without being committed. An op already in
// a batch may still commit after its caller left: a caller that got an
// error must not assume its op was not written, only that it was not
// acknowledged.
func (w *Writer[Op, Res]) Submit(ctx context.Context, op Op) (Res, error) {
	p := &pending[Op, Res]{op: op}
	if w.window > 0 {
		// Counted before the announcement goes, so that a writer
		// deciding whether to gather never sees neither.
		p.inTransit = true
		w.inTransit.Add(1)
		w.ann.take()
	}
	p.done.Lock()
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		w.arrived(p)
		var zero Res
		return zero, ErrClosed
	}
	select {
	case w.ops <- p:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		w.arrived(p)
		var zero Res
		return zero, context.Cause(ctx)
	}
	stop := context.AfterFunc(ctx, func() {
		if p.state.CompareAndSwap(waiting, abandoned) {
			p.done.Unlock()
		}
	})
	p.done.Lock() // until the writer, or ctx's end, unlocks it
	stop()
	if p.state.Load() == abandoned {
		var zero Res
		return zero, context.Cause(ctx)
	}
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
		batch = w.take(batch[:0], p)
		for len(batch) < w.max {
			p, ok := w.queued()
			if !ok {
				break
			}
			batch = w.take(batch, p)
		}
		if w.beforeGather != nil {
			w.beforeGather()
		}
		batch = w.gather(batch)
		// An op whose caller has left is not committed: nobody would
		// learn its outcome.
		batch = slices.DeleteFunc(batch, func(p *pending[Op, Res]) bool { return p.state.Load() == abandoned })
		if len(batch) == 0 {
			continue
		}
		ops = ops[:0]
		for _, p := range batch {
			ops = append(ops, p.op)
		}
		start := time.Now()
		results := w.commit(ops)
		if w.window > 0 {
			w.commitAvg += (time.Since(start) - w.commitAvg) / 8
		}
		for i, p := range batch {
			p.res = results[i]
			if p.state.CompareAndSwap(waiting, answered) {
				p.done.Unlock()
			}
		}
		clear(batch)
		clear(ops)
	}
}

// take adds p to batch and counts it.
func (w *Writer[Op, Res]) take(batch []*pending[Op, Res], p *pending[Op, Res]) []*pending[Op, Res] {
	w.arrived(p)
	w.taken.Add(1)
	return append(batch, p)
}

// arrived uncounts p from the ops in transit: the writer has it, or its
// Submit gave up before sending it.
func (w *Writer[Op, Res]) arrived(p *pending[Op, Res]) {
	if p.inTransit {
		p.inTransit = false
		w.inTransit.Add(-1)
	}
}

// expecting says whether an op is on its way: announced and not yet
// submitted (nor forgotten), or submitted and not yet received. The
// announcements are read first: a Submit counts itself in transit before
// it takes one.
func (w *Writer[Op, Res]) expecting(since time.Time) bool {
	return w.ann.coming(since) > 0 || w.inTransit.Load() > 0
}

// queued is an op already queued, without waiting; ok is false when none
// is or the queue is closed.
func (w *Writer[Op, Res]) queued() (p *pending[Op, Res], ok bool) {
	select {
	case p, ok = <-w.ops:
		return p, ok
	default:
		return nil, false
	}
}

// gather waits, when Gather is on and batch is smaller than its target,
// for announced ops to arrive: until the target is reached, none is
// still coming, or the wait's deadline. A wait that brought nothing
// forgets what was announced before it began (an announcer slower than
// the wait, or one that gave up), so that it is not waited for again.
func (w *Writer[Op, Res]) gather(batch []*pending[Op, Res]) []*pending[Op, Res] {
	if w.window <= 0 || len(batch) >= w.target {
		return batch
	}
	start := time.Now()
	if !w.expecting(start.Add(-expireAfter)) {
		return batch
	}
	wait := min(w.window, w.commitAvg)
	if wait <= 0 {
		return batch
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	n := len(batch)
	defer func() { w.gathered.Add(uint64(len(batch) - n)) }()
	for len(batch) < w.target && w.expecting(start.Add(-expireAfter)) {
		select {
		case p, ok := <-w.ops:
			if !ok {
				return batch
			}
			batch = w.take(batch, p)
		case <-t.C:
			w.timeouts.Add(1)
			if len(batch) == n {
				w.ann.coming(start)
			}
			return batch
		}
	}
	return batch
}
