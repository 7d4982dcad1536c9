package relay

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"time"
)

// tlsBackend logs the gateway's side in to a crypto/tls server (the
// backend, serving handle on the plaintext it reads) through a client tap,
// as pgbackend does: the gateway's raw socket and the keys the tap
// captured, with the tickets it saw.
func tlsBackend(t *testing.T, handle func(net.Conn)) (net.Conn, *TLSKeys, int) {
	t.Helper()
	g, b := socketPair(t)
	tap := NewTLSClientTap(g)
	// A session cache, so that the server sends tickets.
	cli := tls.Client(tap, &tls.Config{InsecureSkipVerify: true, KeyLogWriter: tap.KeyLog(), ClientSessionCache: tls.NewLRUClientSessionCache(1)})
	srv := tls.Server(b, &tls.Config{Certificates: []tls.Certificate{testCert(t)}})
	errc := make(chan error, 1)
	go func() { errc <- srv.Handshake() }()
	if err := cli.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	tap.Handshaken(cli.ConnectionState())
	// The login: a request and its answer through crypto/tls.
	go func() {
		buf := make([]byte, 7)
		if _, err := io.ReadFull(srv, buf); err != nil {
			return
		}
		srv.Write([]byte("welcome"))
		handle(srv)
	}()
	cli.Write([]byte("startup"))
	buf := make([]byte, 7)
	if _, err := io.ReadFull(cli, buf); err != nil || string(buf) != "welcome" {
		t.Fatalf("login answer %q, %v", buf, err)
	}
	keys, err := tap.Keys(7)
	if err != nil {
		t.Fatal(err)
	}
	if !keys.PeerServer {
		t.Fatal("keys of a client tap do not say the peer is the server")
	}
	return g, keys, tap.Tickets()
}

// A session whose backend speaks TLS 1.3 runs on a loop (either engine): the
// backend's records (after crypto/tls's session tickets, which the tap
// counts) are opened, a 1 MB result among them, and what goes to it is
// sealed; a clean end keeps the backend with its record state, the reset
// sealed, and its answer opens in Go (TLSConn) from that state.
func TestEventRelayTLSBackend(t *testing.T) {
	engines(t, func(t *testing.T, engine string) { testTLSBackend(t, eventRelay(t, 1, engine)) })
}

func testTLSBackend(t *testing.T, r *EventRelay) {
	backend, keys, tickets := tlsBackend(t, func(c net.Conn) { echo(c, 1<<20) })
	if tickets == 0 {
		t.Fatal("the tap saw no session ticket from crypto/tls's server")
	}
	client, server := socketPair(t)
	done := make(chan ended, 1)
	type keptBackend struct {
		fd   int
		keys *TLSKeys
	}
	kept := make(chan keptBackend, 1)
	tr := &testTracker{}
	if _, err := r.Start(Session{Client: server, Backend: backend, BackendTLS: keys, Tracker: tr, Reset: resetMsg,
		Keep: func(fd int, k *TLSKeys) { kept <- keptBackend{fd, k} }, End: func(up, down int64) { done <- ended{up, down} }}); err != nil {
		t.Fatal(err)
	}
	client.SetDeadline(time.Now().Add(20 * time.Second))
	for _, n := range []int{1, 100, maxPlaintext, 40000} {
		roundTrip(t, client, seqBytes(n, byte(n))[:n])
	}
	client.Write([]byte{'B'})
	got := make([]byte, 1<<20)
	if _, err := io.ReadFull(client, got); err != nil || !bytes.Equal(got, bytes.Repeat([]byte{'x'}, 1<<20)) {
		t.Fatalf("1 MB result: %v", err)
	}
	client.Write([]byte{goodbye})
	waitEnd(t, done)
	k := <-kept
	if k.fd < 0 || k.keys == nil {
		t.Fatalf("Keep got %d, %v; want the socket and its record state", k.fd, k.keys)
	}
	if k.keys.WriteSeq <= keys.WriteSeq || k.keys.ReadSeq <= keys.ReadSeq {
		t.Fatalf("record state %d/%d after the session, %d/%d before", k.keys.ReadSeq, k.keys.WriteSeq, keys.ReadSeq, keys.WriteSeq)
	}
	raw, err := FDConn(k.fd)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewTLSConn(raw, k.keys)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got[:1]); err != nil || got[0] != reply {
		t.Fatalf("reset answer %q, %v", got[:1], err)
	}
	// And the connection goes on in Go: an echo, both ways.
	if _, err := c.Write([]byte("again")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, got[:5]); err != nil || string(got[:5]) != "again" {
		t.Fatalf("echo through TLSConn %q, %v", got[:5], err)
	}
	if st := r.Stats(); st.Started != 1 || st.StartedBackendTLS != 1 || st.StartedTLS != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// A record from the backend that does not open ends the session (the
// client's socket closes; no panic), and so does the backend's
// close_notify; neither backend is kept.
func TestEventRelayTLSBackendEnds(t *testing.T) {
	engines(t, func(t *testing.T, engine string) { testTLSBackendEnds(t, eventRelay(t, 1, engine)) })
}

func testTLSBackendEnds(t *testing.T, r *EventRelay) {
	for _, bad := range []bool{true, false} {
		ready := make(chan net.Conn, 1)
		backend, keys, _ := tlsBackend(t, func(c net.Conn) { ready <- c })
		client, server := socketPair(t)
		done := make(chan ended, 1)
		if _, err := r.Start(Session{Client: server, Backend: backend, BackendTLS: keys, Tracker: &testTracker{farewell: []byte("gone")}, Reset: resetMsg,
			Keep: func(fd int, _ *TLSKeys) { t.Errorf("kept %d", fd) }, End: func(up, down int64) { done <- ended{up, down} }}); err != nil {
			t.Fatal(err)
		}
		srv := (<-ready).(*tls.Conn)
		srv.Write([]byte("hi"))
		client.SetDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 2)
		if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "hi" {
			t.Fatalf("%q, %v", buf, err)
		}
		if bad {
			srv.NetConn().Write([]byte{recordAppData, 3, 3, 0, 20, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20})
		} else {
			srv.CloseWrite() // close_notify, the socket left open
		}
		waitEnd(t, done)
		// The tracker's farewell (pgwire: the FATAL that says the backend
		// is gone), then the end of the client's connection.
		if got, err := io.ReadAll(client); string(got) != "gone" || err != nil {
			t.Fatalf("bad %v: the client read %q, %v; want the farewell and its connection closed", bad, got, err)
		}
		if bad {
			// The backend was told why.
			srv.SetDeadline(time.Now().Add(10 * time.Second))
			if _, err := srv.Read(buf); err == nil {
				t.Fatal("the backend read on after its bad record")
			}
		}
	}
	if st := r.Stats(); st.StartedBackendTLS != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// A TLSConn answers the peer's KeyUpdate that asks for one (with its
// own, then records under the next keys), skips session tickets from a
// server, and keeps Read and Write apart.
func TestTLSConnKeyUpdateAndTickets(t *testing.T) {
	a, b := socketPair(t)
	suite := tls.TLS_AES_256_GCM_SHA384
	s1, s2 := bytes.Repeat([]byte{1}, 48), bytes.Repeat([]byte{2}, 48)
	c, err := NewTLSConn(a, &TLSKeys{CipherSuite: suite, ReadSecret: s1, WriteSecret: s2, PeerServer: true})
	if err != nil {
		t.Fatal(err)
	}
	peer, err := newRecordLayer(&TLSKeys{CipherSuite: suite, ReadSecret: s2, WriteSecret: s1})
	if err != nil {
		t.Fatal(err)
	}
	ticket := append([]byte{hsNewSessionTicket, 0, 0, 40}, make([]byte, 40)...)
	msg := peer.out.seal(nil, recordHandshake, ticket[:20]) // a ticket across two records
	msg = peer.out.seal(msg, recordHandshake, ticket[20:])
	msg = peer.out.seal(msg, recordHandshake, []byte{hsKeyUpdate, 0, 0, 1, 1})
	if err := peer.out.update(); err != nil {
		t.Fatal(err)
	}
	msg = peer.seal(msg, []byte("after"))
	b.SetDeadline(time.Now().Add(10 * time.Second))
	c.SetDeadline(time.Now().Add(10 * time.Second))
	b.Write(msg)
	got := make([]byte, 5)
	if _, err := io.ReadFull(c, got); err != nil || string(got) != "after" {
		t.Fatalf("read %q, %v", got, err)
	}
	if c.rl.tickets != 1 {
		t.Fatalf("%d tickets skipped, want 1", c.rl.tickets)
	}
	c.Write([]byte("reply"))
	// The peer gets the KeyUpdate answer first, then "reply" under the
	// next keys.
	buf := make([]byte, 1024)
	var plain []byte
	for len(plain) < 5 {
		off := copy(buf, peer.pending)
		n, err := b.Read(buf[off:])
		if err != nil {
			t.Fatal(err)
		}
		p, used, err := peer.openRecords(buf[:off+n])
		if err != nil {
			t.Fatal(err)
		}
		peer.carry(buf[used : off+n])
		plain = append(plain, buf[:p]...)
	}
	if string(plain) != "reply" || peer.in.seq != 1 {
		t.Fatalf("peer read %q at read sequence %d; want reply as the first record under new keys", plain, peer.in.seq)
	}
	if _, _, ok := c.LoopKeys(); !ok {
		t.Fatal("LoopKeys refused an idle connection")
	}
}

// A KeyUpdate from the backend that asks for one back (which PostgreSQL
// never sends on its own; the backend here is the record layer itself):
// the loop follows the backend's keys, answers with its own KeyUpdate, and
// seals what the client sends next under its next keys.
func TestEventRelayTLSBackendKeyUpdate(t *testing.T) {
	engines(t, func(t *testing.T, engine string) {
		r := eventRelay(t, 1, engine)
		g, b := socketPair(t)
		suite := tls.TLS_AES_128_GCM_SHA256
		s1, s2 := bytes.Repeat([]byte{3}, 32), bytes.Repeat([]byte{4}, 32)
		keys := &TLSKeys{CipherSuite: suite, ReadSecret: s1, WriteSecret: s2, PeerServer: true}
		be, err := newRecordLayer(&TLSKeys{CipherSuite: suite, ReadSecret: s2, WriteSecret: s1})
		if err != nil {
			t.Fatal(err)
		}
		client, server := socketPair(t)
		done := make(chan ended, 1)
		if _, err := r.Start(Session{Client: server, Backend: g, BackendTLS: keys, Tracker: &testTracker{},
			End: func(up, down int64) { done <- ended{up, down} }}); err != nil {
			t.Fatal(err)
		}
		client.SetDeadline(time.Now().Add(10 * time.Second))
		b.SetDeadline(time.Now().Add(10 * time.Second))
		msg := be.out.seal(nil, recordHandshake, []byte{hsKeyUpdate, 0, 0, 1, 1})
		if err := be.out.update(); err != nil {
			t.Fatal(err)
		}
		b.Write(be.seal(msg, []byte("rows")))
		got := make([]byte, 4)
		if _, err := io.ReadFull(client, got); err != nil || string(got) != "rows" {
			t.Fatalf("client read %q, %v", got, err)
		}
		client.Write([]byte("next"))
		var plain []byte
		buf := make([]byte, 4096)
		for len(plain) < 4 {
			off := copy(buf, be.pending)
			n, err := b.Read(buf[off:])
			if err != nil {
				t.Fatal(err)
			}
			p, used, err := be.openRecords(buf[:off+n])
			if err != nil {
				t.Fatal(err)
			}
			be.carry(buf[used : off+n])
			plain = append(plain, buf[:p]...)
		}
		if string(plain) != "next" || be.in.seq != 1 {
			t.Fatalf("backend read %q at read sequence %d; want next, the first record after the loop's KeyUpdate", plain, be.in.seq)
		}
		client.Close()
		waitEnd(t, done)
	})
}

// Close may come from another goroutine than Read's, as with any
// net.Conn (Framed closes the backend while fromBackend reads it): a
// record that did not open in Read and the alert Close sends must not
// race (the race detector watches), and the peer is told why.
func TestTLSConnCloseAfterBadRecordInRead(t *testing.T) {
	a, b := socketPair(t)
	suite := tls.TLS_AES_128_GCM_SHA256
	s1, s2 := bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{8}, 32)
	c, err := NewTLSConn(a, &TLSKeys{CipherSuite: suite, ReadSecret: s1, WriteSecret: s2, PeerServer: true})
	if err != nil {
		t.Fatal(err)
	}
	peer, err := newRecordLayer(&TLSKeys{CipherSuite: suite, ReadSecret: s2, WriteSecret: s1})
	if err != nil {
		t.Fatal(err)
	}
	b.SetDeadline(time.Now().Add(10 * time.Second))
	c.SetDeadline(time.Now().Add(10 * time.Second))
	// The reader tells nobody it is done: nothing orders its work before
	// Close but time, as when the backend's bad record and the client's
	// hang-up come at once.
	go c.Read(make([]byte, 64))
	bad := peer.seal(nil, []byte("spoiled"))
	bad[len(bad)-1] ^= 1
	b.Write(bad)
	time.Sleep(200 * time.Millisecond)
	c.Close()
	rec := make([]byte, recordOverhead+2)
	if _, err := io.ReadFull(b, rec); err != nil {
		t.Fatal(err)
	}
	if p, typ, err := peer.in.open(rec); err != nil || typ != recordAlert || !bytes.Equal(p, []byte{2, alertBadRecordMAC}) {
		t.Fatalf("peer read % x (type %d), %v; want the fatal alert bad_record_mac", p, typ, err)
	}
}
