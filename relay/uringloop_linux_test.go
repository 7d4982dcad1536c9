//go:build amd64 || arm64

package relay

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// With two provided buffers and a two-entry submission queue, a dozen
// sessions streaming both ways at once keep running out of both: receives
// end for want of a buffer and are re-armed when one comes back, and the
// queue is submitted before it overflows (admitting one session queues
// three requests: its two receives and the wake-up's). Every byte still
// arrives, in order.
func TestURingWithFewBuffers(t *testing.T) {
	size := uringSize
	uringSize.entries, uringSize.bufs = 2, 2
	r := eventRelay(t, 1, EngineIOURing)
	uringSize = size // the loop has its sizes
	addr := backendServer(t, func(c net.Conn) { echo(c, 0) })
	var wg sync.WaitGroup
	errs := make(chan error, 12)
	for w := range 12 {
		c, _ := startSession(t, r, addr, &testTracker{}, nil)
		wg.Go(func() {
			// About 1 MB up and the same back down, at once.
			data := bytesOf(1<<20, byte(w))
			go c.Write(data)
			got := make([]byte, len(data))
			c.SetReadDeadline(time.Now().Add(60 * time.Second))
			if _, err := io.ReadFull(c, got); err != nil {
				errs <- fmt.Errorf("session %d: %v", w, err)
				return
			}
			if !bytes.Equal(got, data) {
				errs <- fmt.Errorf("session %d: the bytes came back changed", w)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if r.starvations.Load() == 0 || r.earlySubmits.Load() == 0 {
		t.Errorf("receives starved %d times, early submits %d: want both paths taken", r.starvations.Load(), r.earlySubmits.Load())
	}
	if held := r.loops[0].(*uringLoop).maxHeld.Load(); held != 1 {
		t.Errorf("sends held up to %d of the 2 buffers at once, want 1", held)
	}
	t.Logf("receives starved %d times, early submits %d", r.starvations.Load(), r.earlySubmits.Load())
}

// Two sessions whose clients stop reading a 16 MB answer do not hold up a
// third session on a loop with two buffers.
func TestURingBlockedSendsLeaveBuffers(t *testing.T) {
	size := uringSize
	uringSize.bufs = 2
	r := eventRelay(t, 1, EngineIOURing)
	uringSize = size
	const big = 16 << 20
	var written [2]atomic.Int64 // by the backends of the two blocked sessions
	var next atomic.Int32
	blocked := backendServer(t, func(c net.Conn) {
		defer c.Close()
		w := &written[next.Add(1)-1]
		chunk := bytes.Repeat([]byte{'x'}, 64<<10)
		for range big / len(chunk) {
			n, err := c.Write(chunk)
			w.Add(int64(n))
			if err != nil {
				return
			}
		}
	})
	for range 2 {
		startSession(t, r, blocked, &testTracker{}, nil) // the client never reads
	}
	// Both backends have sent more than the relay holds for a client
	// (uringBacklog) and the relay has queued behind sends to both clients.
	if !waitUntil(10*time.Second, func() bool {
		return written[0].Load() > 1<<20 && written[1].Load() > 1<<20 && r.backlogs[0].Load() >= 2
	}) {
		t.Fatalf("the blocked sessions' backends wrote %d and %d bytes", written[0].Load(), written[1].Load())
	}
	c, _ := startSession(t, r, backendServer(t, func(c net.Conn) { echo(c, 0) }), &testTracker{}, nil)
	roundTrip(t, c, []byte("42"))
}

// A ring the kernel refuses, at io_uring_setup (as seccomp, the
// io_uring_disabled sysctl or an old kernel refuse it) or at a later step,
// is an error that leaves no descriptor or mapping behind, and the default
// engine falls back to epoll.
func TestURingSetupFailureIsAnError(t *testing.T) {
	size := uringSize
	t.Cleanup(func() { uringSize = size })
	// Rings of earlier tests may still be closing (a count can fall while
	// this runs, never rise: no other test runs meanwhile), so each failure
	// is repeated: a leak would add a ring and its mappings every time.
	rings := func() (fds, maps int) {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if l, _ := os.Readlink("/proc/self/fd/" + e.Name()); l == "anon_inode:[io_uring]" {
				fds++
			}
		}
		m, err := os.ReadFile("/proc/self/maps")
		if err != nil {
			t.Fatal(err)
		}
		return fds, bytes.Count(m, []byte("io_uring"))
	}
	const tries = 10
	fds0, maps0 := rings()
	for _, tc := range []struct {
		what          string
		entries, bufs uint32
	}{
		{"io_uring_setup", 1 << 20, size.bufs},      // more entries than the kernel allows: EINVAL
		{"provided buffers", size.entries, 1 << 16}, // a buffer ring larger than 32768: EINVAL
	} {
		uringSize.entries, uringSize.bufs = tc.entries, tc.bufs
		for range tries {
			l, err := newURingLoop(&EventRelay{})
			if err == nil {
				l.discard()
				t.Fatalf("%s: a ring with %d entries and %d buffers was set up", tc.what, tc.entries, tc.bufs)
			}
			if l != nil {
				t.Fatalf("%s: %v, and a loop", tc.what, err)
			}
		}
	}
	if fds, maps := rings(); fds > fds0 || maps > maps0 {
		t.Errorf("after %d failures each: %d io_uring descriptors and %d mappings, %d and %d before", tries, fds, maps, fds0, maps0)
	}
	uringSize.entries = 1 << 20
	r, err := New(Config{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if r.Engine() != EngineEpoll {
		t.Errorf("engine %q where io_uring cannot be set up, want epoll", r.Engine())
	}
}
