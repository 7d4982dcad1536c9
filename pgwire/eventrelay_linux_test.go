package pgwire

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
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

// policyOf is thread tid's scheduling policy.
func policyOf(t *testing.T, tid int) uint32 {
	t.Helper()
	a, err := unix.SchedGetAttr(tid, 0)
	if err != nil {
		t.Fatalf("thread %d: %v", tid, err)
	}
	return a.Policy
}

// readyRows reads the answer to a simple query, up to ReadyForQuery, and
// counts its rows.
func readyRows(t *testing.T, fe *pgproto3.Frontend) int {
	t.Helper()
	rows := 0
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		switch msg.(type) {
		case *pgproto3.DataRow:
			rows++
		case *pgproto3.ReadyForQuery:
			return rows
		}
	}
}

// Under SchedBatch the loop whose send waits for a slow reader runs
// SCHED_OTHER, while the other loop stays SCHED_BATCH, and goes back to
// SCHED_BATCH once schedCalm has passed without such a wait.
func TestEventLoopLeavesBatchWhileFeedingSlowReader(t *testing.T) {
	engines(t, func(t *testing.T, engine string) {
		r := eventRelay(t, 2, engine)
		_, addr := newGateway(t, func(g *Gateway) { g.Relay = r })
		conn := rawLogin(t, addr)
		defer conn.Close()
		var tids []int
		if !waitUntil(5*time.Second, func() bool { tids = r.loopThreads(); return len(tids) == 2 }) {
			t.Fatalf("%d loop threads, want 2", len(tids))
		}
		policies := func() (batch, normal int) {
			for _, tid := range tids {
				if policyOf(t, tid) == unix.SCHED_BATCH {
					batch++
				} else {
					normal++
				}
			}
			return batch, normal
		}
		if b, _ := policies(); b != 2 {
			t.Fatalf("%d of 2 loops SCHED_BATCH before any back-pressure", b)
		}
		// About 40 MB of results that the client does not read yet: the
		// client's socket fills and its loop's sends wait.
		buf, _ := (&pgproto3.Query{String: "SELECT repeat('x', 1000000) FROM generate_series(1, 40)"}).Encode(nil)
		if _, err := conn.Write(buf); err != nil {
			t.Fatal(err)
		}
		if !waitUntil(5*time.Second, func() bool { _, n := policies(); return n == 1 }) {
			t.Fatal("the session's loop stayed SCHED_BATCH while its reader held its sends back")
		}
		if b, n := policies(); b != 1 || n != 1 {
			t.Fatalf("%d loops SCHED_BATCH and %d SCHED_OTHER; want only the session's loop to leave batch", b, n)
		}
		fe := pgproto3.NewFrontend(conn, conn)
		if rows := readyRows(t, fe); rows != 40 {
			t.Fatalf("%d rows, want 40", rows)
		}
		time.Sleep(schedCalm + 100*time.Millisecond)
		// The loop looks again when it next has work.
		buf, _ = (&pgproto3.Query{String: "SELECT 1"}).Encode(nil)
		if _, err := conn.Write(buf); err != nil {
			t.Fatal(err)
		}
		readyRows(t, fe)
		if !waitUntil(5*time.Second, func() bool { b, _ := policies(); return b == 2 }) {
			t.Fatal("the loop did not go back to SCHED_BATCH once its reader kept up")
		}
		// Each loop to batch, then the session's to normal and back, once
		// or more: on a loaded machine the reader may fall behind again
		// after a calm spell while it reads the 40 rows.
		if n := r.schedSwitches.Load(); n < 4 || n%2 != 0 {
			t.Errorf("%d policy changes, want 4 or more, in pairs (each loop to batch, the session's to normal and back)", n)
		}
	})
}
