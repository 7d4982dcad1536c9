package relay

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// startTLSSession logs a TLS client in (a handshake and an exchange
// through crypto/tls) and moves the session onto r with its keys, the
// backend at addr: the client's tls.Conn, its raw socket, the keys, and
// End's report.
func startTLSSession(t *testing.T, r *EventRelay, addr string, tr Tracker) (*tls.Conn, net.Conn, *TLSKeys, chan ended) {
	t.Helper()
	cli, srv, tap, sock := tlsPair(t, &tls.Config{ClientSessionCache: tls.NewLRUClientSessionCache(1)})
	keys, err := tap.Keys(exchange(t, cli, srv))
	if err != nil {
		t.Fatal(err)
	}
	backend, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan ended, 1)
	if _, err := r.Start(Session{Client: sock, ClientTLS: keys, Backend: backend, Tracker: tr, End: func(up, down int64) { done <- ended{up, down} }}); err != nil {
		t.Fatal(err)
	}
	return cli, cli.NetConn(), keys, done
}

func waitEnd(t *testing.T, done chan ended) ended {
	t.Helper()
	select {
	case e := <-done:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("the session did not end")
	}
	return ended{}
}

// A crypto/tls client's session on a loop: echoes, a 1 MB result sealed
// into 16 KiB records, and at the end close_notify, which the client's
// tls.Conn reads as EOF. (Slow readers over TLS: pgwire's
// TestRelayLargeTransfers.)
func TestEventRelayTLSClient(t *testing.T) {
	engines(t, func(t *testing.T, engine string) {
		r := eventRelay(t, 1, engine)
		addr := backendServer(t, func(c net.Conn) { echo(c, 1<<20) })
		cli, _, _, done := startTLSSession(t, r, addr, &testTracker{})
		cli.SetDeadline(time.Now().Add(20 * time.Second))
		for _, n := range []int{1, 100, maxPlaintext, 40000} {
			roundTrip(t, cli, seqBytes(n, byte(n))[:n])
		}
		if _, err := cli.Write([]byte{'B'}); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 1<<20)
		if _, err := io.ReadFull(cli, got); err != nil || !bytes.Equal(got, bytes.Repeat([]byte{'x'}, 1<<20)) {
			t.Fatalf("1 MB result: %v", err)
		}
		if _, err := cli.Write([]byte{goodbye}); err != nil {
			t.Fatal(err)
		}
		e := waitEnd(t, done)
		if want := int64(1 + 100 + maxPlaintext + 40000 + 1); e.up != want {
			t.Errorf("%d bytes up, want %d", e.up, want)
		}
		if n, err := cli.Read(got); n != 0 || err != io.EOF {
			t.Fatalf("after the end the client read %d bytes, %v; want close_notify (EOF)", n, err)
		}
		if st := r.Stats(); st.StartedTLS != 1 || st.Started != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// A client's close_notify ends its session; a record that does not open
// ends it too, and the client is told bad_record_mac. No panic either way.
func TestEventRelayTLSClientEnds(t *testing.T) {
	engines(t, func(t *testing.T, engine string) {
		r := eventRelay(t, 1, engine)
		addr := backendServer(t, func(c net.Conn) { echo(c, 0) })
		cli, _, _, done := startTLSSession(t, r, addr, &testTracker{})
		roundTrip(t, cli, []byte("hello"))
		cli.Close() // close_notify
		waitEnd(t, done)

		cli, sock, _, done := startTLSSession(t, r, addr, &testTracker{})
		cli.SetDeadline(time.Now().Add(10 * time.Second))
		roundTrip(t, cli, []byte("hello"))
		sock.Write([]byte{recordAppData, 3, 3, 0, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
		waitEnd(t, done)
		if _, err := cli.Read(make([]byte, 10)); err == nil || !strings.Contains(err.Error(), "bad record MAC") {
			t.Fatalf("client read after a bad record: %v, want the bad_record_mac alert", err)
		}
	})
}

// A KeyUpdate from the client that asks for one back: the loop moves its
// read keys on, answers with its own KeyUpdate and moves its write keys
// on. The client here is the record layer itself, carrying on from a
// crypto/tls client (which cannot send KeyUpdate on demand).
func TestEventRelayTLSKeyUpdate(t *testing.T) {
	engines(t, func(t *testing.T, engine string) {
		r := eventRelay(t, 1, engine)
		addr := backendServer(t, func(c net.Conn) { echo(c, 0) })
		_, sock, keys, done := startTLSSession(t, r, addr, &testTracker{})
		me, err := newRecordLayer(&TLSKeys{CipherSuite: keys.CipherSuite, ReadSecret: keys.WriteSecret, WriteSecret: keys.ReadSecret,
			ReadSeq: keys.WriteSeq, WriteSeq: keys.ReadSeq})
		if err != nil {
			t.Fatal(err)
		}
		sock.SetDeadline(time.Now().Add(10 * time.Second))
		read := func(want string) {
			t.Helper()
			var got []byte
			buf := make([]byte, 64<<10)
			for len(got) < len(want) {
				off := copy(buf, me.pending)
				n, err := sock.Read(buf[off:])
				if err != nil {
					t.Fatalf("after %q: %v", got, err)
				}
				plain, used, err := me.openRecords(buf[:off+n])
				if err != nil {
					t.Fatal(err)
				}
				me.carry(buf[used : off+n])
				got = append(got, buf[:plain]...)
			}
			if string(got) != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		}
		for i, requested := range []byte{1, 0, 1} {
			msg := me.out.seal(nil, recordHandshake, []byte{hsKeyUpdate, 0, 0, 1, requested})
			if err := me.out.update(); err != nil {
				t.Fatal(err)
			}
			msg = me.seal(msg, []byte{'a' + byte(i)})
			if _, err := sock.Write(msg); err != nil {
				t.Fatal(err)
			}
			read(string([]byte{'a' + byte(i)}))
		}
		if me.reply != nil {
			t.Fatal("the loop asked for a KeyUpdate")
		}
		if me.in.seq != 1 {
			t.Fatalf("read sequence %d after the last update", me.in.seq)
		}
		if _, err := sock.Write(me.seal(nil, []byte{goodbye})); err != nil {
			t.Fatal(err)
		}
		waitEnd(t, done)
	})
}

// A backend that hangs up while its client listens: the client reads the
// tracker's farewell (pgwire: the FATAL that says the backend is gone)
// after what the backend sent, sealed for a TLS client, and then its
// connection ends; on both engines and on the goroutine relay (Framed
// and Pipe).
func TestBackendHangUpSendsFarewell(t *testing.T) {
	bye := []byte("backend gone")
	// The backend answers one read, then hangs up without a word.
	answerOnce := func(c net.Conn) {
		buf := make([]byte, 64)
		n, _ := c.Read(buf)
		c.Write(buf[:n])
		c.Close()
	}
	expect := func(t *testing.T, c net.Conn) {
		t.Helper()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		if got, err := io.ReadAll(c); string(got) != "hello"+string(bye) || err != nil {
			t.Fatalf("the client read %q, %v; want the answer, the farewell and the end", got, err)
		}
	}
	engines(t, func(t *testing.T, engine string) {
		r := eventRelay(t, 1, engine)
		addr := backendServer(t, answerOnce)
		client, done := startSession(t, r, addr, &testTracker{farewell: bye}, nil)
		expect(t, client)
		waitEnd(t, done)
		cli, _, _, done := startTLSSession(t, r, addr, &testTracker{farewell: bye})
		expect(t, cli)
		waitEnd(t, done)
	})
	for name, relay := range map[string]func(client, backend net.Conn, t Tracker){
		"Framed": func(c, b net.Conn, t Tracker) { Framed(c, b, t) },
		"Pipe":   func(c, b net.Conn, t Tracker) { Pipe(c, b, t) },
	} {
		t.Run(name, func(t *testing.T) {
			client, server := socketPair(t)
			backend, err := net.Dial("tcp", backendServer(t, answerOnce))
			if err != nil {
				t.Fatal(err)
			}
			go relay(server, backend, &testTracker{farewell: bye})
			expect(t, client)
		})
	}
}

// keyUpdateRecords is n KeyUpdates that ask for an answer, each moving
// me's write keys on.
func keyUpdateRecords(t *testing.T, me *recordLayer, n int) []byte {
	t.Helper()
	var b []byte
	for range n {
		b = me.out.seal(b, recordHandshake, []byte{hsKeyUpdate, 0, 0, 1, 1})
		if err := me.out.update(); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// readUntil reads c with me's record layer until the application data
// ends with want.
func readUntil(c net.Conn, me *recordLayer, want string) error {
	var got []byte
	buf := make([]byte, 64<<10)
	for !bytes.HasSuffix(got, []byte(want)) {
		off := copy(buf, me.pending)
		n, err := c.Read(buf[off:])
		if err != nil {
			return err
		}
		plain, used, err := me.openRecords(buf[:off+n])
		if err != nil {
			return err
		}
		me.carry(buf[used : off+n])
		got = append(got, buf[:plain]...)
	}
	return nil
}

// smallUnixPair is a connected pair of unix stream sockets whose send
// buffers are small.
func smallUnixPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	var conns [2]net.Conn
	for i, fd := range fds {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096)
		f := os.NewFile(uintptr(fd), "pair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
		t.Cleanup(func() { c.Close() })
	}
	return conns[0], conns[1]
}

// A peer that sends KeyUpdate after KeyUpdate asking for an answer, and
// reads none of the answers, must not have the loop queue them without
// bound (each costs the loop as many bytes as the peer sent): as
// crypto/tls, which writes its answer before it reads on, the loop reads
// no more of a side whose answer waits to be written, so the peer's own
// writes stall. Once it reads, the session carries on. Both sides: a
// hostile client, and a hostile backend.
func TestEventRelayTLSKeyUpdateFloodIsBounded(t *testing.T) {
	// The flood itself is refused after keyUpdateFree KeyUpdates (TestRecordLayerBoundsKeyUpdates);
	// lifted here, so that the loop's holding of a side is what bounds it.
	defer func(n int64) { keyUpdateFree = n }(keyUpdateFree)
	keyUpdateFree = 1 << 40
	for _, side := range []string{"client", "backend"} {
		t.Run(side, func(t *testing.T) {
			engines(t, func(t *testing.T, engine string) {
				r := eventRelay(t, 1, engine)
				suite := tls.TLS_AES_128_GCM_SHA256
				s1, s2 := bytes.Repeat([]byte{5}, 32), bytes.Repeat([]byte{6}, 32)
				keys := &TLSKeys{CipherSuite: suite, ReadSecret: s1, WriteSecret: s2, PeerServer: side == "backend"}
				me, err := newRecordLayer(&TLSKeys{CipherSuite: suite, ReadSecret: s2, WriteSecret: s1})
				if err != nil {
					t.Fatal(err)
				}
				// peer is the hostile end (the test's), gw the loop's: a unix
				// socket pair with small buffers, so that little hides in
				// the kernel.
				peer, gw := smallUnixPair(t)
				done := make(chan ended, 1)
				ss := Session{Tracker: &testTracker{}, End: func(up, down int64) { done <- ended{up, down} }}
				var other net.Conn // the session's other end
				if side == "client" {
					backend, err := net.Dial("tcp", backendServer(t, func(c net.Conn) { echo(c, 0) }))
					if err != nil {
						t.Fatal(err)
					}
					ss.Client, ss.ClientTLS, ss.Backend = gw, keys, backend
				} else {
					client, server := socketPair(t)
					ss.Client, ss.Backend, ss.BackendTLS = server, gw, keys
					other = client
				}
				if _, err := r.Start(ss); err != nil {
					t.Fatal(err)
				}
				const limit = 1 << 20
				written := 0
				var rest []byte
				for written < limit {
					batch := keyUpdateRecords(t, me, 1000)
					peer.SetWriteDeadline(time.Now().Add(time.Second))
					n, err := peer.Write(batch)
					written += n
					if err != nil {
						if !errors.Is(err, os.ErrDeadlineExceeded) {
							t.Fatal(err)
						}
						rest = batch[n:]
						break
					}
				}
				t.Logf("%d bytes of KeyUpdates taken before the writes stalled", written)
				if rest == nil {
					t.Fatalf("the loop took %d bytes of KeyUpdates from a %s that reads none of the answers: they queue without bound", written, side)
				}
				// The peer reads now: the answers, then what it sends next.
				peer.SetDeadline(time.Now().Add(20 * time.Second))
				errc := make(chan error, 1)
				go func() {
					if side == "client" {
						errc <- readUntil(peer, me, "ping")
						return
					}
					errc <- readUntil(peer, me, "pong")
				}()
				if _, err := peer.Write(rest); err != nil {
					t.Fatal(err)
				}
				if _, err := peer.Write(me.seal(nil, []byte("ping"))); err != nil {
					t.Fatal(err)
				}
				if side == "backend" {
					other.SetDeadline(time.Now().Add(20 * time.Second))
					got := make([]byte, 4)
					if _, err := io.ReadFull(other, got); err != nil || string(got) != "ping" {
						t.Fatalf("client read %q, %v", got, err)
					}
					other.Write([]byte("pong"))
				}
				if err := <-errc; err != nil {
					t.Fatalf("after the KeyUpdates: %v", err)
				}
				if side == "client" {
					peer.Write(me.seal(nil, []byte{goodbye}))
				} else {
					other.Close()
				}
				waitEnd(t, done)
			})
		})
	}
}

// A client may send a record a byte at a time. The loop keeps the part of
// a record it has until the rest comes; rebuilding that part at every
// receive (a new buffer the size of what came so far) made one 16 KiB
// record cost hundreds of megabytes of allocation on the loop, which every
// session on it shares. A trickled record costs its length.
func TestEventRelayTLSTrickledRecordIsLinear(t *testing.T) {
	engines(t, func(t *testing.T, engine string) {
		r := eventRelay(t, 1, engine)
		addr := backendServer(t, func(c net.Conn) { echo(c, 0) })
		_, sock, keys, done := startTLSSession(t, r, addr, &testTracker{})
		me, err := newRecordLayer(&TLSKeys{CipherSuite: keys.CipherSuite, ReadSecret: keys.WriteSecret, WriteSecret: keys.ReadSecret,
			ReadSeq: keys.WriteSeq, WriteSeq: keys.ReadSeq})
		if err != nil {
			t.Fatal(err)
		}
		tcp := sock.(*net.TCPConn)
		tcp.SetNoDelay(true)
		sock.SetDeadline(time.Now().Add(60 * time.Second))
		want := bytesOf(maxPlaintext, 7)
		record := me.seal(nil, want)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		for i := range record {
			if _, err := sock.Write(record[i : i+1]); err != nil {
				t.Fatal(err)
			}
			if i%8 == 0 {
				// Let the loop receive what came so far on its own.
				time.Sleep(20 * time.Microsecond)
			}
		}
		if err := readUntil(sock, me, string(want[len(want)-64:])); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 8<<20 {
			t.Errorf("one %d-byte record sent a byte at a time: %d MB allocated", len(record), grew>>20)
		}
		if _, err := sock.Write(me.seal(nil, []byte{goodbye})); err != nil {
			t.Fatal(err)
		}
		waitEnd(t, done)
	})
}
