package relay

import (
	"bytes"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The relay's tests run without PostgreSQL: a backend is a TCP server of
// the test's (an echo, mostly), and a session's protocol is the one of
// testTracker. The gateway's tests drive the relays with PostgreSQL.

// goodbye, as the last byte of a chunk from the client, ends its session;
// reply, from the backend, answers the reset.
const (
	goodbye = 0xff
	reply   = 'Z'
)

var resetMsg = []byte("RESET")

// testTracker is a Tracker for a protocol of bytes: the client's goodbye
// ends the session, clean unless dirty is set.
type testTracker struct {
	mu    sync.Mutex
	dirty bool
	said  bool // the client said goodbye
	// farewell is what BackendEnded gives the client when it had not said
	// goodbye.
	farewell []byte
	keeping  atomic.Int32
}

func (tr *testTracker) FromClient(chunk []byte) (int, bool) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if n := len(chunk); n > 0 && chunk[n-1] == goodbye {
		tr.said = true
		return n - 1, true
	}
	return len(chunk), false
}

func (tr *testTracker) FromBackend([]byte) {}

// BackendEnded spoils the session unless the client had said goodbye
// (the goroutine relay stops reading the backend then).
func (tr *testTracker) BackendEnded() []byte {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if !tr.said {
		tr.dirty = true
		return tr.farewell
	}
	return nil
}

func (tr *testTracker) Clean() bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.said && !tr.dirty
}

func (tr *testTracker) Keeping() { tr.keeping.Add(1) }

// echo is a backend that sends back what it reads, answers resetMsg with
// reply, and sends n bytes of 'x' for every 'B' it reads.
func echo(c net.Conn, n int) {
	defer c.Close()
	buf := make([]byte, 64<<10)
	big := bytes.Repeat([]byte{'x'}, n)
	for {
		k, err := c.Read(buf)
		if k > 0 {
			switch chunk := buf[:k]; {
			case bytes.Equal(chunk, resetMsg):
				c.Write([]byte{reply})
			case bytes.Equal(chunk, []byte{'B'}):
				if _, err := c.Write(big); err != nil {
					return
				}
			default:
				if _, err := c.Write(chunk); err != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// backendServer serves handle on a loopback port for the test's life.
func backendServer(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
	return ln.Addr().String()
}

// socketPair is a connected pair of TCP sockets: the test's end of a
// client connection, and the one the relay gets.
func socketPair(t testing.TB) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if server, err = ln.Accept(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// ended is what a session's End reported.
type ended struct{ up, down int64 }

// startSession puts a session between a new client and the backend at
// addr on r; it returns the test's end of the client and End's report.
func startSession(t testing.TB, r *EventRelay, addr string, tr Tracker, keep func(int, *TLSKeys)) (net.Conn, chan ended) {
	t.Helper()
	client, server := socketPair(t)
	backend, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan ended, 1)
	s := Session{Client: server, Backend: backend, Tracker: tr, End: func(up, down int64) { done <- ended{up, down} }}
	if keep != nil {
		s.Keep, s.Reset = keep, resetMsg
	}
	if _, err := r.Start(s); err != nil {
		t.Fatal(err)
	}
	return client, done
}

// roundTrip writes msg to c and reads it back.
func roundTrip(t testing.TB, c net.Conn, msg []byte) {
	t.Helper()
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echoed %q, want %q", got, msg)
	}
}

// waitUntil polls cond for up to d and reports whether it came true.
func waitUntil(d time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(d); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

// The goroutine relay keeps a backend the client left clean, open, and
// closes one it did not.
func TestFramedKeepsCleanBackend(t *testing.T) {
	addr := backendServer(t, func(c net.Conn) { echo(c, 0) })
	for _, clean := range []bool{true, false} {
		client, server := socketPair(t)
		backend, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		tr := &testTracker{dirty: !clean}
		done := make(chan struct{})
		var up, down int64
		var kept bool
		go func() { defer close(done); up, down, kept = Framed(server, backend, tr) }()
		roundTrip(t, client, []byte("hello"))
		client.Write([]byte{goodbye})
		<-done
		if kept != clean || up != 5 || down != 5 || tr.keeping.Load() != map[bool]int32{true: 1}[clean] {
			t.Fatalf("clean %v: kept %v, up %d, down %d, Keeping called %d times", clean, kept, up, down, tr.keeping.Load())
		}
		_, err = backend.Write([]byte("again"))
		if clean && err != nil {
			t.Fatalf("the kept backend was closed: %v", err)
		}
		if !clean && err == nil {
			t.Fatal("the backend of an unclean session is open")
		}
		backend.Close()
	}
}

// Pipe copies both ways and closes both sides when one hangs up.
func TestPipe(t *testing.T) {
	addr := backendServer(t, func(c net.Conn) { echo(c, 0) })
	client, server := socketPair(t)
	backend, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan ended, 1)
	go func() { up, down := Pipe(server, backend, &testTracker{}); done <- ended{up, down} }()
	roundTrip(t, client, []byte("hello"))
	client.Close()
	if e := <-done; e.up != 5 || e.down != 5 {
		t.Fatalf("moved %d up, %d down; want 5 and 5", e.up, e.down)
	}
	if _, err := backend.Write([]byte("x")); err == nil {
		t.Fatal("the backend is still open")
	}
}

// BenchmarkRoundTrip is one small message to an echo backend and back,
// through each relay.
func BenchmarkRoundTrip(b *testing.B) {
	addr := backendServer(b, func(c net.Conn) { echo(c, 0) })
	run := func(b *testing.B, client net.Conn) {
		msg, got := bytes.Repeat([]byte{'q'}, 64), make([]byte, 64)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := client.Write(msg); err != nil {
				b.Fatal(err)
			}
			if _, err := io.ReadFull(client, got); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("goroutine", func(b *testing.B) {
		client, server := socketPair(b)
		backend, err := net.Dial("tcp", addr)
		if err != nil {
			b.Fatal(err)
		}
		go Framed(server, backend, &testTracker{})
		run(b, client)
	})
	if !Supported {
		return
	}
	for _, e := range []string{EngineEpoll, EngineIOURing} {
		b.Run(e, func(b *testing.B) {
			r, err := New(Config{Threads: 1, Engine: e})
			if err != nil {
				b.Fatal(err)
			}
			defer r.Close()
			client, _ := startSession(b, r, addr, &testTracker{}, nil)
			run(b, client)
		})
	}
}
