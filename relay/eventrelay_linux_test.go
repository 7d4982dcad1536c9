package relay

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// eventRelay is an event relay of threads loops on engine for one test.
func eventRelay(t testing.TB, threads int, engine string) *EventRelay {
	t.Helper()
	r, err := New(Config{Threads: threads, Engine: engine})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if r.Engine() != engine {
		t.Fatalf("engine %q, want %q", r.Engine(), engine)
	}
	return r
}

// engines runs f once per engine.
func engines(t *testing.T, f func(t *testing.T, engine string)) {
	for _, e := range []string{EngineEpoll, EngineIOURing} {
		t.Run(e, func(t *testing.T) { f(t, e) })
	}
}

// loopThreads are the thread IDs of the loops that have started.
func (r *EventRelay) loopThreads() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.threads)
}

// Where io_uring cannot be set up (seccomp, io_uring_disabled, an old
// kernel), the default engine is epoll; asking for io_uring is an error.
func TestEventRelayFallsBackToEpoll(t *testing.T) {
	made := makeURingLoop
	t.Cleanup(func() { makeURingLoop = made })
	makeURingLoop = func(*EventRelay) (relayLoop, error) { return nil, unix.EPERM }
	r, err := New(Config{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Engine() != EngineEpoll || len(r.loops) != 2 {
		t.Fatalf("engine %q with %d loops, want epoll with 2", r.Engine(), len(r.loops))
	}
	if _, err := New(Config{Threads: 1, Engine: EngineIOURing}); !errors.Is(err, unix.EPERM) {
		t.Fatalf("io_uring asked for: %v, want EPERM", err)
	}
	if _, err := New(Config{Threads: 1, Engine: "kqueue"}); err == nil {
		t.Fatal("an unknown engine was accepted")
	}
	if _, err := New(Config{Threads: 1, Sched: "fifo"}); err == nil {
		t.Fatal("an unknown scheduling policy was accepted")
	}
}

// A session the client leaves clean has its backend handed to Keep, alive,
// with the session's reset message sent and its answer left to read; an
// unclean one has it closed. End reports the bytes moved either way.
func TestEventRelayKeepsCleanBackend(t *testing.T) {
	engines(t, func(t *testing.T, engine string) {
		r := eventRelay(t, 1, engine)
		addr := backendServer(t, func(c net.Conn) { echo(c, 0) })
		for _, clean := range []bool{true, false} {
			kept := make(chan int, 1)
			tr := &testTracker{dirty: !clean}
			client, done := startSession(t, r, addr, tr, func(fd int, _ *TLSKeys) { kept <- fd })
			roundTrip(t, client, []byte("hello"))
			client.Write([]byte{goodbye})
			// As clients do: hang up right after the goodbye, which the
			// relay may see while it hands the backend over.
			client.Close()
			if e := <-done; e.up != 5 || e.down != 5 {
				t.Fatalf("clean %v: End reported %d up, %d down; want 5 and 5", clean, e.up, e.down)
			}
			if !clean {
				select {
				case fd := <-kept:
					t.Fatalf("the backend of an unclean session went to Keep (%d)", fd)
				default:
				}
				continue
			}
			fd := <-kept
			if fd < 0 || tr.keeping.Load() != 1 {
				t.Fatalf("Keep got %d after %d Keeping calls; want a socket after one", fd, tr.keeping.Load())
			}
			c, err := FDConn(fd)
			if err != nil {
				t.Fatal(err)
			}
			// The reset's answer, which the relay left unread.
			got := make([]byte, 1)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if _, err := io.ReadFull(c, got); err != nil || got[0] != reply {
				t.Fatalf("read %q, %v from the kept backend; want the reset's answer %q", got, err, reply)
			}
			roundTrip(t, c, []byte("kept"))
			c.Close()
		}
	})
}

// The loops' threads run under the configured policy, and exit with the
// relay, so no other goroutine ever runs on a thread left SCHED_BATCH.
func TestEventLoopSchedulingPolicy(t *testing.T) {
	addr := backendServer(t, func(c net.Conn) { echo(c, 0) })
	engines(t, func(t *testing.T, engine string) {
		for _, tc := range []struct {
			sched  string
			policy uint32
		}{{"", unix.SCHED_BATCH}, {SchedBatch, unix.SCHED_BATCH}, {SchedNormal, unix.SCHED_NORMAL}} {
			r, err := New(Config{Threads: 2, Engine: engine, Sched: tc.sched})
			if err != nil {
				t.Fatal(err)
			}
			c, _ := startSession(t, r, addr, &testTracker{}, nil)
			var tids []int
			if !waitUntil(5*time.Second, func() bool { tids = r.loopThreads(); return len(tids) == 2 }) {
				t.Fatalf("sched %q: %d loop threads started, want 2", tc.sched, len(tids))
			}
			for _, tid := range tids {
				if p := policyOf(t, tid); p != tc.policy {
					t.Errorf("sched %q: loop thread %d has policy %d, want %d", tc.sched, tid, p, tc.policy)
				}
			}
			roundTrip(t, c, []byte("ping"))
			c.Close()
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

// Under SchedProcess every thread of the process is SCHED_BATCH, those
// started afterwards too, and the loops behave as under SchedBatch.
func TestSchedProcessBatchesEveryThread(t *testing.T) {
	threads := func() []int {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			t.Fatal(err)
		}
		var tids []int
		for _, e := range tasks {
			if tid, err := strconv.Atoi(e.Name()); err == nil {
				tids = append(tids, tid)
			}
		}
		return tids
	}
	t.Cleanup(func() {
		// The rest of the tests run SCHED_OTHER, as before.
		for _, tid := range threads() {
			unix.SchedSetAttr(tid, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_NORMAL}, 0)
		}
	})
	addr := backendServer(t, func(c net.Conn) { echo(c, 0) })
	r, err := New(Config{Threads: 1, Engine: EngineEpoll, Sched: SchedProcess})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Sched() != SchedBatch {
		t.Fatalf("loops' policy %q, want %q", r.Sched(), SchedBatch)
	}
	for _, tid := range threads() {
		if p := policyOf(t, tid); p != unix.SCHED_BATCH {
			t.Errorf("thread %d has policy %d, want SCHED_BATCH", tid, p)
		}
	}
	// Threads started now inherit it: goroutines locked to their threads
	// and blocked make the runtime start new ones for the rest.
	before := threads()
	release := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 * len(before) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
			<-release
		}()
	}
	var fresh int
	if !waitUntil(5*time.Second, func() bool {
		fresh = 0
		for _, tid := range threads() {
			if !slices.Contains(before, tid) {
				fresh++
			}
		}
		return fresh > 0
	}) {
		t.Fatal("no thread was started")
	}
	// Only the new threads: one that was there before may be an earlier
	// test's loop thread on its way out, which puts itself back to
	// SCHED_OTHER (ownThread) after the check above.
	for _, tid := range threads() {
		if slices.Contains(before, tid) {
			continue
		}
		if a, err := unix.SchedGetAttr(tid, 0); err == nil && a.Policy != unix.SCHED_BATCH {
			t.Errorf("thread %d, one of %d started afterwards, has policy %d, want SCHED_BATCH", tid, fresh, a.Policy)
		}
	}
	close(release)
	wg.Wait()
	c, _ := startSession(t, r, addr, &testTracker{}, nil)
	roundTrip(t, c, []byte("ping"))
	c.Close()
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

// Under SchedBatch the loop whose send waits for a slow reader runs
// SCHED_OTHER, and goes back to SCHED_BATCH once schedCalm has passed
// without such a wait.
func TestEventLoopLeavesBatchWhileFeedingSlowReader(t *testing.T) {
	const size = 40 << 20
	addr := backendServer(t, func(c net.Conn) { echo(c, size) })
	engines(t, func(t *testing.T, engine string) {
		r := eventRelay(t, 2, engine)
		conn, _ := startSession(t, r, addr, &testTracker{}, nil)
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
		// 40 MB that the client does not read yet: the client's socket
		// fills and its loop's sends wait.
		if _, err := conn.Write([]byte{'B'}); err != nil {
			t.Fatal(err)
		}
		// The loop's changes of policy are counted, not glanced at: on a
		// loaded machine a glance can fall after the loop went back to
		// batch (schedCalm after the last send that waited, though the
		// reader still holds the rest back). The idle loop has nothing to
		// send, so any change is the session's loop's.
		if !waitUntil(10*time.Second, func() bool { return r.schedSwitches.Load() > 2 }) {
			t.Fatal("the session's loop stayed SCHED_BATCH while its reader held its sends back")
		}
		conn.SetReadDeadline(time.Now().Add(60 * time.Second))
		if n, err := io.CopyN(io.Discard, conn, size); err != nil {
			t.Fatalf("read %d of %d bytes: %v", n, size, err)
		}
		// Every turn of a loop (at least one per loopWait) looks at the
		// time since its last wait.
		if !waitUntil(10*time.Second, func() bool { b, _ := policies(); return b == 2 && r.schedSwitches.Load()%2 == 0 }) {
			t.Fatal("the loop did not go back to SCHED_BATCH once its reader kept up")
		}
		// Each loop to batch, then the session's to normal and back, once
		// or more: on a loaded machine the reader may fall behind again
		// after a calm spell while it reads the rows.
		if n := r.schedSwitches.Load(); n < 4 || n%2 != 0 {
			t.Errorf("%d policy changes, want 4 or more, in pairs (each loop to batch, the session's to normal and back)", n)
		}
	})
}

// A loop waiting with its P does not hold up the garbage collector's
// stop-the-world: the runtime's preemption signal, or the bounded wait
// (loopWait) without one, ends the wait.
func TestEventLoopLetsGCStopTheWorld(t *testing.T) {
	addr := backendServer(t, func(c net.Conn) { echo(c, 0) })
	engines(t, func(t *testing.T, engine string) {
		r := eventRelay(t, 1, engine)
		c, _ := startSession(t, r, addr, &testTracker{}, nil)
		roundTrip(t, c, []byte("ping")) // the loop runs, then waits
		done := make(chan time.Duration, 1)
		go func() {
			start := time.Now()
			for range 20 {
				runtime.GC()
			}
			done <- time.Since(start)
		}()
		select {
		case d := <-done:
			t.Logf("20 collections with an idle loop: %v", d)
		case <-time.After(20 * time.Second):
			t.Fatal("garbage collection stalled behind the event loop")
		}
		roundTrip(t, c, []byte("after the collections"))
	})
}

// The relay spreads sessions over its loops, and counts what it carried.
func TestEventRelayStats(t *testing.T) {
	addr := backendServer(t, func(c net.Conn) { echo(c, 0) })
	engines(t, func(t *testing.T, engine string) {
		r := eventRelay(t, 3, engine)
		if st := r.Stats(); st.Running || st.Started != 0 {
			t.Fatalf("before any session: %+v", st)
		}
		for range 6 {
			c, _ := startSession(t, r, addr, &testTracker{}, nil)
			roundTrip(t, c, []byte("x"))
		}
		st := r.Stats()
		if !st.Running || st.Started != 6 || !slices.Equal(st.PerLoop, []int{2, 2, 2}) {
			t.Fatalf("after 6 sessions: %+v, want running, 6 started, 2 on each of 3 loops", st)
		}
	})
}

// Sessions ended from outside (kill) end on the loop: End is called and
// the client sees the connection closed.
func TestEventRelayKill(t *testing.T) {
	addr := backendServer(t, func(c net.Conn) { echo(c, 0) })
	engines(t, func(t *testing.T, engine string) {
		r := eventRelay(t, 1, engine)
		client, server := socketPair(t)
		backend, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan ended, 1)
		kill, err := r.Start(Session{Client: server, Backend: backend, Tracker: &testTracker{}, End: func(up, down int64) { done <- ended{up, down} }})
		if err != nil {
			t.Fatal(err)
		}
		roundTrip(t, client, []byte("hi"))
		kill(false)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("a killed session did not end")
		}
		client.SetReadDeadline(time.Now().Add(10 * time.Second))
		if n, err := client.Read(make([]byte, 1)); n != 0 || err == nil {
			t.Fatalf("the killed session's client read %d bytes, %v", n, err)
		}
	})
}

// A gentle kill closes the backend's side only: the client that reads gets
// the Tracker's farewell, then the connection closes. One that does not
// read (the loop waits on it, not on the backend) keeps its session until
// a kill that is not gentle, which ends it.
func TestEventRelayGentleKill(t *testing.T) {
	addr := backendServer(t, func(c net.Conn) { echo(c, 4<<20) })
	engines(t, func(t *testing.T, engine string) {
		r := eventRelay(t, 1, engine)
		start := func() (net.Conn, Kill, chan ended) {
			client, server := socketPair(t)
			// Small buffers: a client that does not read is soon one
			// the loop waits on.
			client.(*net.TCPConn).SetReadBuffer(16 << 10)
			server.(*net.TCPConn).SetWriteBuffer(16 << 10)
			backend, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan ended, 1)
			kill, err := r.Start(Session{Client: server, Backend: backend, Tracker: &testTracker{farewell: []byte("bye")},
				End: func(up, down int64) { done <- ended{up, down} }})
			if err != nil {
				t.Fatal(err)
			}
			return client, kill, done
		}

		client, kill, done := start()
		roundTrip(t, client, []byte("hi"))
		kill(true)
		client.SetReadDeadline(time.Now().Add(10 * time.Second))
		if got, err := io.ReadAll(client); string(got) != "bye" {
			t.Fatalf("after a gentle kill the client read %q (%v), want the farewell", got, err)
		}
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("a gently killed session did not end")
		}

		client, kill, done = start()
		if _, err := client.Write([]byte{'B'}); err != nil {
			t.Fatal(err)
		}
		// The backend's 4 MiB fill the client's socket, and the loop
		// holds the rest.
		if !waitUntil(10*time.Second, func() bool { return r.Stats().BackloggedToClient > 0 }) {
			t.Fatal("the client's socket never filled")
		}
		time.Sleep(100 * time.Millisecond)
		kill(true)
		select {
		case <-done:
			t.Fatal("a gentle kill ended a session whose client does not read")
		case <-time.After(200 * time.Millisecond):
		}
		kill(false)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("a killed session whose client does not read did not end")
		}
	})
}

// bytesOf is n bytes of text (no goodbye in it) for stream tests.
func bytesOf(n int, seed byte) []byte {
	b := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
	for i := 0; i < n; i += 1000 {
		b[i] = 'a' + seed%26
	}
	return b
}
