package admission

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// Waiters are admitted in the order they arrived, one per Leave.
func TestWaitersEnterInArrivalOrder(t *testing.T) {
	g := New(1)
	if err := g.Enter(context.Background()); err != nil {
		t.Fatal(err)
	}
	order := make(chan int, 5)
	for i := range 5 {
		go func() {
			if err := g.Enter(context.Background()); err != nil {
				t.Error(err)
				return
			}
			order <- i
		}()
		waitFor(t, "the waiter to queue", func() bool { return g.Waiting() == i+1 })
	}
	for want := range 5 {
		g.Leave()
		if got := <-order; got != want {
			t.Fatalf("admitted waiter %d, want %d", got, want)
		}
		if g.Waiting() != 4-want {
			t.Fatalf("%d waiting after admitting %d, want %d", g.Waiting(), want, 4-want)
		}
	}
	g.Leave()
	// Every place is free again: n callers enter without waiting.
	if err := g.Enter(canceled()); err != nil {
		t.Fatalf("a free place refused: %v", err)
	}
}

// A newcomer does not overtake a queue even when a place is free at the
// moment it arrives: the place was handed to the oldest waiter.
func TestNoBargingPastWaiters(t *testing.T) {
	g := New(1)
	g.Enter(context.Background())
	admitted := make(chan struct{})
	go func() {
		g.Enter(context.Background())
		close(admitted)
	}()
	waitFor(t, "the waiter to queue", func() bool { return g.Waiting() == 1 })
	g.Leave()
	if err := g.Enter(canceled()); err == nil {
		t.Fatal("a newcomer took the place handed to the waiter")
	}
	<-admitted
}

// A waiter whose context ends leaves the queue without a place: the next
// Leave admits the one behind it.
func TestCanceledWaiterLeavesTheQueue(t *testing.T) {
	g := New(1)
	g.Enter(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error)
	go func() { gaveUp <- g.Enter(ctx) }()
	waitFor(t, "the first waiter to queue", func() bool { return g.Waiting() == 1 })
	second := make(chan struct{})
	go func() {
		g.Enter(context.Background())
		close(second)
	}()
	waitFor(t, "the second waiter to queue", func() bool { return g.Waiting() == 2 })
	cancel()
	if err := <-gaveUp; err != context.Canceled {
		t.Fatalf("canceled waiter got %v, want context.Canceled", err)
	}
	if g.Waiting() != 1 {
		t.Fatalf("%d waiting after the cancel, want 1", g.Waiting())
	}
	g.Leave()
	<-second
	g.Leave()
	if err := g.Enter(canceled()); err != nil {
		t.Fatalf("the place was lost: %v", err)
	}
}

// Under contention with cancellations racing admissions, no more than n
// hold a place at once, every place comes back, and nobody is stuck.
func TestConcurrentHoldersNeverExceedN(t *testing.T) {
	const n = 3
	g := New(n)
	var in, peak atomic.Int32
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			if i%3 == 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, time.Duration(i%7)*time.Microsecond)
				defer cancel()
			}
			if g.Enter(ctx) != nil {
				return
			}
			v := in.Add(1)
			for p := peak.Load(); v > p && !peak.CompareAndSwap(p, v); p = peak.Load() {
			}
			for range 100 {
				if in.Load() > n {
					t.Error("more than n inside")
				}
			}
			in.Add(-1)
			g.Leave()
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > n || p < 1 {
		t.Fatalf("peak holders %d, want 1..%d", p, n)
	}
	for range n {
		if err := g.Enter(canceled()); err != nil {
			t.Fatalf("a place was lost: %v", err)
		}
	}
	if g.Waiting() != 0 {
		t.Fatalf("%d still waiting", g.Waiting())
	}
}

func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
