package groupcommit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// waitFor polls cond; the writer runs on its own goroutine.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// Ops submitted while a batch commits go out together in the next one,
// and each caller gets its own result.
func TestOpsQueuedDuringACommitShareTheNext(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var batches [][]int
	w := New(64, 16, func(ops []int) []int {
		mu.Lock()
		batches = append(batches, append([]int(nil), ops...))
		first := len(batches) == 1
		mu.Unlock()
		if first {
			<-release
		}
		out := make([]int, len(ops))
		for i, op := range ops {
			out[i] = op * 10
		}
		return out
	})
	defer w.Close()
	var wg sync.WaitGroup
	got := make([]int, 6)
	submit := func(i int) {
		defer wg.Done()
		r, err := w.Submit(context.Background(), i)
		if err != nil {
			t.Error(err)
		}
		got[i] = r
	}
	wg.Add(1)
	go submit(0)
	waitFor(t, "the first op to be taken", func() bool { return w.Taken() == 1 })
	for i := 1; i < 6; i++ {
		wg.Add(1)
		go submit(i)
	}
	waitFor(t, "five ops to queue behind the first", func() bool { return w.Queued() == 5 })
	close(release)
	wg.Wait()
	for i, r := range got {
		if r != i*10 {
			t.Errorf("op %d got %d, want %d", i, r, i*10)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(batches) != 2 || len(batches[1]) != 5 {
		t.Errorf("batches %v, want [0] then the five queued ops together", batches)
	}
}

// A batch holds at most max ops.
func TestBatchBound(t *testing.T) {
	release := make(chan struct{})
	var sizes []int // the writer's goroutine only, read after Close
	w := New(64, 3, func(ops []int) []int {
		if len(sizes) == 0 {
			<-release
		}
		sizes = append(sizes, len(ops))
		return make([]int, len(ops))
	})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); w.Submit(context.Background(), 0) }()
	waitFor(t, "the first op to be taken", func() bool { return w.Taken() == 1 })
	for range 7 {
		wg.Add(1)
		go func() { defer wg.Done(); w.Submit(context.Background(), 1) }()
	}
	waitFor(t, "seven ops to queue", func() bool { return w.Queued() == 7 })
	close(release)
	wg.Wait()
	w.Close()
	if len(sizes) != 4 || sizes[0] != 1 || sizes[1] != 3 || sizes[2] != 3 || sizes[3] != 1 {
		t.Errorf("batch sizes %v, want [1 3 3 1]", sizes)
	}
}

// A full FIFO: Submit gives up with its context; Close answers what is
// queued, and later Submits get ErrClosed.
func TestContextAndClose(t *testing.T) {
	release := make(chan struct{})
	w := New(1, 1, func(ops []int) []int {
		<-release
		return []int{ops[0] + 1}
	})
	res := make(chan int, 2)
	go func() { r, _ := w.Submit(context.Background(), 1); res <- r }()
	waitFor(t, "the first op to be taken", func() bool { return w.Taken() == 1 })
	go func() { r, _ := w.Submit(context.Background(), 2); res <- r }()
	waitFor(t, "the second op to fill the FIFO", func() bool { return w.Queued() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := w.Submit(ctx, 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Submit on a full FIFO: %v, want the context's deadline", err)
	}
	closed := make(chan struct{})
	go func() { w.Close(); close(closed) }()
	close(release)
	<-closed
	if a, b := <-res, <-res; a+b != 5 {
		t.Errorf("queued ops answered %d and %d, want 2 and 3", a, b)
	}
	if _, err := w.Submit(context.Background(), 4); !errors.Is(err, ErrClosed) {
		t.Errorf("Submit after Close: %v, want ErrClosed", err)
	}
}

// batches records the sizes of the batches a writer commits.
type batches struct {
	mu    sync.Mutex
	sizes []int
}

func (b *batches) commit(ops []int) []int {
	b.mu.Lock()
	b.sizes = append(b.sizes, len(ops))
	b.mu.Unlock()
	return append([]int(nil), ops...)
}

func (b *batches) get() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.sizes...)
}

// An op announced before the writer took a small batch joins that batch
// when it arrives, instead of paying a commit of its own.
func TestGatherWaitsForAnnouncedOps(t *testing.T) {
	var b batches
	w := New(64, 16, b.commit, Gather(time.Hour, 8))
	defer w.Close()
	w.Expect()
	w.Expect()
	done := make(chan error, 2)
	go func() { _, err := w.Submit(context.Background(), 1); done <- err }()
	waitFor(t, "the first op to be taken", func() bool { return w.Taken() == 1 })
	go func() { _, err := w.Submit(context.Background(), 2); done <- err }()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := b.get(); len(got) != 1 || got[0] != 2 {
		t.Errorf("batch sizes %v, want one batch of both ops", got)
	}
	if w.Gathered() != 1 {
		t.Errorf("Gathered() = %d, want 1", w.Gathered())
	}
}

// Without announcements (one caller at a time, or callers that do not
// use Expect) the writer commits at once: with an hour's window, a wait
// would time the test out.
func TestGatherNeverWaitsUnannounced(t *testing.T) {
	var b batches
	w := New(64, 16, b.commit, Gather(time.Hour, 8))
	defer w.Close()
	for i := range 3 {
		w.Expect() // announced, then submitted: nothing else is coming
		if _, err := w.Submit(context.Background(), i); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Submit(context.Background(), 10+i); err != nil { // unannounced
			t.Fatal(err)
		}
	}
	if got := b.get(); len(got) != 6 {
		t.Errorf("batch sizes %v, want six single commits", got)
	}
}

// An announcement never followed by an op costs one wait, not one per
// batch: the wait that gathers nothing forgives it.
func TestGatherForgivesAnAbandonedAnnouncement(t *testing.T) {
	var b batches
	w := New(64, 16, b.commit, Gather(20*time.Millisecond, 8))
	defer w.Close()
	w.Expect() // never submitted
	w.Expect()
	if _, err := w.Submit(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if c := w.ann.coming(time.Time{}); c != 0 {
		t.Errorf("after the wait, %d ops still expected, want 0", c)
	}
	w.Expect()
	if _, err := w.Submit(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	if got, n := b.get(), w.timeouts.Load(); len(got) != 2 || w.Gathered() != 0 || n != 1 {
		t.Errorf("batch sizes %v, gathered %d, waits to the deadline %d; want two single commits, none gathered, one wait",
			got, w.Gathered(), n)
	}
}

// Found in a failure-injecting review: a caller whose context ended while
// its op waited behind a batch that never finished (a store that stopped
// answering) stayed until that batch and its own had failed, whatever its
// deadline. Submit now returns the context's error as soon as it ends, and
// an op whose caller has left is not committed.
func TestSubmitLeavesWithItsContext(t *testing.T) {
	release := make(chan struct{})
	var b batches
	w := New(8, 8, func(ops []int) []int {
		if ops[0] == 1 {
			<-release
		}
		return b.commit(ops)
	})
	defer w.Close()
	first := make(chan error, 1)
	go func() { _, err := w.Submit(context.Background(), 1); first <- err }()
	waitFor(t, "the first op to be taken", func() bool { return w.Taken() == 1 })
	for _, d := range []time.Duration{20 * time.Millisecond, 0} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		if d == 0 { // a caller whose op is queued, then cancelled
			ctx, cancel = context.WithCancel(context.Background())
			time.AfterFunc(20*time.Millisecond, cancel)
		}
		start := time.Now()
		_, err := w.Submit(ctx, 2)
		cancel()
		if err == nil || ctx.Err() == nil || !errors.Is(err, ctx.Err()) {
			t.Fatalf("Submit behind a stuck batch: %v, want its context's error", err)
		}
		if took := time.Since(start); took > time.Second {
			t.Fatalf("Submit returned %v after its context ended", took)
		}
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if _, err := w.Submit(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	// The abandoned ops were not committed: batches of 1 (op 1) and 1 (op 3).
	if got := b.get(); len(got) != 2 || got[0] != 1 || got[1] != 1 {
		t.Fatalf("batches %v, want [1 1]: the abandoned ops were committed", got)
	}
}

// Health reports a failure until a batch commits, or for HealthFor.
func TestHealth(t *testing.T) {
	var h Health
	if h.Err() != nil {
		t.Fatal("a new Health reports a failure")
	}
	cause := errors.New("disk full")
	h.Failed(cause)
	if err := h.Err(); !errors.Is(err, cause) {
		t.Fatalf("after a failure: %v", err)
	}
	h.Committed()
	if err := h.Err(); err != nil {
		t.Fatalf("after a commit: %v", err)
	}
	h.last.Store(&failure{err: cause, at: time.Now().Add(-HealthFor - time.Second)})
	if err := h.Err(); err != nil {
		t.Fatalf("a failure older than HealthFor: %v", err)
	}
}

// A Submit takes its announcement before its op reaches the FIFO: a
// writer that looks for coming ops in between must still wait for it,
// not commit without it and leave it a commit (an fsync) of its own.
func TestGatherWaitsForAnOpBetweenItsAnnouncementAndTheFIFO(t *testing.T) {
	var b batches
	w := New(64, 16, b.commit, Gather(time.Hour, 8))
	defer w.Close()
	second := make(chan struct{})
	var once sync.Once
	w.beforeGather = func() {
		once.Do(func() {
			// The first batch holds op 1; op 2's announcement is taken
			// (its Submit is on its way to the FIFO) before the writer
			// looks whether to gather.
			second <- struct{}{}
			for deadline := time.Now().Add(10 * time.Second); w.Coming() != 0; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Error("timed out waiting for op 2's announcement to be taken")
					return
				}
			}
		})
	}
	w.Expect()
	w.Expect()
	done := make(chan error, 2)
	go func() { _, err := w.Submit(context.Background(), 1); done <- err }()
	<-second
	go func() { _, err := w.Submit(context.Background(), 2); done <- err }()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := b.get(); len(got) != 1 || got[0] != 2 {
		t.Errorf("batch sizes %v, want one batch of both ops", got)
	}
}

// A Submit that counted itself in transit and then gave up before its op
// reached the FIFO (its context ended while the FIFO was full) uncounts
// itself: else every later gather would wait its whole window for an op
// that never comes.
func TestGiveUpInTransitIsUncounted(t *testing.T) {
	release := make(chan struct{})
	var b batches
	w := New(1, 16, func(ops []int) []int {
		if ops[0] == 1 {
			<-release // the first commit holds the writer
		}
		return b.commit(ops)
	}, Gather(time.Hour, 8))
	defer w.Close()
	done := make(chan error, 2)
	go func() { _, err := w.Submit(context.Background(), 1); done <- err }()
	waitFor(t, "the first op to be taken", func() bool { return w.Taken() == 1 })
	go func() { _, err := w.Submit(context.Background(), 2); done <- err }()
	waitFor(t, "the second op to fill the FIFO", func() bool { return w.Queued() == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := w.Submit(ctx, 3); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a Submit whose context ended at a full FIFO: %v, want its deadline", err)
	}
	close(release)
	for range 2 {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("op 2 not committed after 10 s: the writer waits for the op that gave up (batches %v)", b.get())
		}
	}
}
