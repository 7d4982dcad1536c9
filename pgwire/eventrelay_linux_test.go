package pgwire

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// perLoop counts the sessions on each loop now.
func (r *EventRelay) perLoop() []int {
	out := make([]int, len(r.loops))
	for i, l := range r.loops {
		out[i] = l.sessions()
	}
	return out
}

func (r *EventRelay) backlogCounts() (toClient, toBackend int64) {
	return r.backlogs[0].Load(), r.backlogs[1].Load()
}

func (r *EventRelay) isRunning() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running
}

// Where io_uring cannot be set up (seccomp, io_uring_disabled, an old
// kernel), the default engine is epoll; asking for io_uring is an error.
func TestEventRelayFallsBackToEpoll(t *testing.T) {
	made := makeURingLoop
	t.Cleanup(func() { makeURingLoop = made })
	makeURingLoop = func(*EventRelay) (relayLoop, error) { return nil, unix.EPERM }
	r, err := NewEventRelay(RelayConfig{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Engine() != EngineEpoll || len(r.loops) != 2 {
		t.Fatalf("engine %q with %d loops, want epoll with 2", r.Engine(), len(r.loops))
	}
	if _, err := NewEventRelay(RelayConfig{Threads: 1, Engine: EngineIOURing}); !errors.Is(err, unix.EPERM) {
		t.Fatalf("io_uring asked for: %v, want EPERM", err)
	}
	if _, err := NewEventRelay(RelayConfig{Threads: 1, Engine: "kqueue"}); err == nil {
		t.Fatal("an unknown engine was accepted")
	}
	if _, err := NewEventRelay(RelayConfig{Threads: 1, Sched: "fifo"}); err == nil {
		t.Fatal("an unknown scheduling policy was accepted")
	}
}

// loopThreads are the thread IDs of the loops that have started.
func (r *EventRelay) loopThreads() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.threads)
}

// The loops' threads run under the configured policy, and exit with the
// relay, so no other goroutine ever runs on a thread left SCHED_BATCH.
func TestEventLoopSchedulingPolicy(t *testing.T) {
	engines(t, func(t *testing.T, engine string) {
		for _, tc := range []struct {
			sched  string
			policy uint32
		}{{"", unix.SCHED_BATCH}, {SchedBatch, unix.SCHED_BATCH}, {SchedNormal, unix.SCHED_NORMAL}} {
			r, err := NewEventRelay(RelayConfig{Threads: 2, Engine: engine, Sched: tc.sched})
			if err != nil {
				t.Fatal(err)
			}
			_, addr := newGateway(t, func(g *Gateway) { g.Relay = r })
			c := mustLogin(t, addr)
			var tids []int
			if !waitUntil(5*time.Second, func() bool { tids = r.loopThreads(); return len(tids) == 2 }) {
				t.Fatalf("sched %q: %d loop threads started, want 2", tc.sched, len(tids))
			}
			for _, tid := range tids {
				a, err := unix.SchedGetAttr(tid, 0)
				if err != nil {
					t.Fatalf("sched %q: thread %d: %v", tc.sched, tid, err)
				}
				if a.Policy != tc.policy {
					t.Errorf("sched %q: loop thread %d has policy %d, want %d", tc.sched, tid, a.Policy, tc.policy)
				}
			}
			if err := c.Ping(context.Background()); err != nil {
				t.Fatal(err)
			}
			c.Close(context.Background())
			r.Close()
			for _, tid := range tids {
				// Go ends a thread whose goroutine exits locked to it, but
				// parks the main thread instead: that one must be back to
				// SCHED_OTHER.
				done := func() bool {
					a, err := unix.SchedGetAttr(tid, 0)
					return err != nil || (tid == os.Getpid() && a.Policy == unix.SCHED_NORMAL)
				}
				if !waitUntil(5*time.Second, done) {
					t.Errorf("sched %q: loop thread %d outlived its relay", tc.sched, tid)
				}
			}
		}
	})
}
