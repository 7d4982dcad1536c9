package relay

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"
)

// peerLayer is the record layer of the client end of a session the loop
// carries with keys: it writes what the loop reads.
func peerLayer(t *testing.T, keys *TLSKeys) *recordLayer {
	t.Helper()
	me, err := newRecordLayer(&TLSKeys{CipherSuite: keys.CipherSuite, ReadSecret: keys.WriteSecret, WriteSecret: keys.ReadSecret,
		ReadSeq: keys.WriteSeq, WriteSeq: keys.ReadSeq})
	if err != nil {
		t.Fatal(err)
	}
	return me
}

// readToEnd reads sock with me until the stream ends (or want bytes of
// data came, want > 0): the application data, and the alerts the loop
// sent ([level, desc] pairs), in order. A record that does not open is an
// error.
func readToEnd(t *testing.T, sock net.Conn, me *recordLayer, want int) (data []byte, alerts [][2]byte, err error) {
	t.Helper()
	sock.SetReadDeadline(time.Now().Add(10 * time.Second))
	var raw []byte
	buf := make([]byte, 64<<10)
	for {
		for len(raw) >= recordHeaderLen {
			n := int(binary.BigEndian.Uint16(raw[3:5]))
			if len(raw) < recordHeaderLen+n {
				break
			}
			rec := raw[:recordHeaderLen+n]
			raw = raw[recordHeaderLen+n:]
			p, typ, oerr := me.in.open(rec)
			if oerr != nil {
				return data, alerts, oerr
			}
			switch typ {
			case recordAppData:
				data = append(data, p...)
			case recordHandshake:
				// The loop's KeyUpdate (answering ours): its next records
				// are under its next keys.
				if !bytes.Equal(p[:4], []byte{hsKeyUpdate, 0, 0, 1}) || len(p) != 5 {
					return data, alerts, errors.New("unexpected handshake message from the loop")
				}
				if err := me.in.update(); err != nil {
					return data, alerts, err
				}
			case recordAlert:
				if len(p) != 2 {
					return data, alerts, errors.New("alert of bad length")
				}
				alerts = append(alerts, [2]byte{p[0], p[1]})
			default:
				return data, alerts, errors.New("unexpected record type from the loop")
			}
		}
		if want > 0 && len(data) >= want {
			return data, alerts, nil
		}
		n, rerr := sock.Read(buf)
		raw = append(raw, buf[:n]...)
		if rerr != nil {
			if rerr == io.EOF || errors.Is(rerr, syscall.ECONNRESET) {
				// A reset: the loop closed with bytes of ours unread.
				rerr = nil
			}
			return data, alerts, rerr
		}
	}
}

// What a client's records do to its session on a loop, against what
// RFC 8446 (and crypto/tls) does with them: the data that must come
// through, and how the loop ends the session, close_notify after the
// client's goodbye, or a fatal alert (level 2) that names the fault.
func TestEventRelayTLSClientRecords(t *testing.T) {
	hs := func(me *recordLayer, b []byte, msg ...byte) []byte { return me.out.seal(b, recordHandshake, msg) }
	keyUpdate := func(me *recordLayer, b []byte, requested byte) []byte {
		b = hs(me, b, hsKeyUpdate, 0, 0, 1, requested)
		if err := me.out.update(); err != nil {
			t.Fatal(err)
		}
		return b
	}
	const ok = 0xff // the session goes on: the client says goodbye, the loop close_notify
	cases := []struct {
		name  string
		build func(me *recordLayer) []byte
		echo  string
		alert byte // fatal alert the loop must send, or ok
	}{
		{"KeyUpdate requested", func(me *recordLayer) []byte { return me.seal(keyUpdate(me, nil, 1), []byte("a")) }, "a", ok},
		{"KeyUpdate not requested", func(me *recordLayer) []byte { return me.seal(keyUpdate(me, nil, 0), []byte("a")) }, "a", ok},
		{"KeyUpdate split over records", func(me *recordLayer) []byte {
			b := hs(me, me.seal(nil, []byte("x")), hsKeyUpdate, 0, 0)
			b = hs(me, b, 1, 1)
			if err := me.out.update(); err != nil {
				t.Fatal(err)
			}
			return me.seal(b, []byte("y"))
		}, "xy", ok},
		{"three KeyUpdates in one write", func(me *recordLayer) []byte {
			b := keyUpdate(me, nil, 1)
			b = keyUpdate(me, me.seal(b, []byte("1")), 0)
			b = keyUpdate(me, me.seal(b, []byte("2")), 1)
			return me.seal(b, []byte("3"))
		}, "123", ok},
		{"record under the keys a KeyUpdate retired", func(me *recordLayer) []byte {
			b := hs(me, nil, hsKeyUpdate, 0, 0, 1, 0)
			return me.seal(b, []byte("stale")) // not updated: the old keys
		}, "", alertBadRecordMAC},
		{"KeyUpdate with a bad request byte", func(me *recordLayer) []byte { return hs(me, nil, hsKeyUpdate, 0, 0, 1, 2) }, "", alertDecodeError},
		{"KeyUpdate of length 2", func(me *recordLayer) []byte { return hs(me, nil, hsKeyUpdate, 0, 0, 2, 1, 0) }, "", alertUnexpectedMessage},
		{"KeyUpdate cut by application data", func(me *recordLayer) []byte { return me.seal(hs(me, nil, hsKeyUpdate, 0), []byte("x")) }, "", alertUnexpectedMessage},
		{"NewSessionTicket from a client", func(me *recordLayer) []byte { return hs(me, nil, hsNewSessionTicket, 0, 0, 0) }, "", alertUnexpectedMessage},
		{"Finished after the handshake", func(me *recordLayer) []byte {
			return hs(me, nil, append([]byte{20, 0, 0, 32}, make([]byte, 32)...)...)
		}, "", alertUnexpectedMessage},
		{"huge handshake message", func(me *recordLayer) []byte { return hs(me, nil, 1, 0xff, 0xff, 0xff) }, "", alertUnexpectedMessage},
		{"empty application data records", func(me *recordLayer) []byte {
			var b []byte
			for range 5 {
				b = me.out.seal(b, recordAppData, nil)
			}
			return me.seal(b, []byte("z"))
		}, "z", ok},
		{"only padding", func(me *recordLayer) []byte { return me.out.seal(nil, 0, make([]byte, 40)) }, "", alertUnexpectedMessage},
		{"no inner content type", func(me *recordLayer) []byte { return me.out.seal(nil, 0, nil) }, "", alertUnexpectedMessage},
		{"inner change_cipher_spec", func(me *recordLayer) []byte { return me.out.seal(nil, recordCCS, []byte{1}) }, "", alertUnexpectedMessage},
		{"inner type 99", func(me *recordLayer) []byte { return me.out.seal(nil, 99, []byte("x")) }, "", alertUnexpectedMessage},
		{"inner plaintext over 2^14+1", func(me *recordLayer) []byte { return me.out.seal(nil, recordAppData, make([]byte, maxPlaintext+1)) }, "", alertRecordOverflow},
		{"ciphertext over 2^14+256", func(me *recordLayer) []byte {
			return []byte{recordAppData, 3, 3, (maxCiphertext + 1) >> 8, (maxCiphertext + 1) & 0xff}
		}, "", alertRecordOverflow},
		{"record shorter than a tag", func(me *recordLayer) []byte { return []byte{recordAppData, 3, 3, 0, 3, 1, 2, 3} }, "", alertDecodeError},
		{"empty record", func(me *recordLayer) []byte { return []byte{recordAppData, 3, 3, 0, 0} }, "", alertDecodeError},
		{"plaintext alert", func(me *recordLayer) []byte { return []byte{recordAlert, 3, 3, 0, 2, 2, 40} }, "", alertUnexpectedMessage},
		{"plaintext change_cipher_spec", func(me *recordLayer) []byte { return []byte{recordCCS, 3, 3, 0, 1, 1} }, "", alertUnexpectedMessage},
		{"many records in one write", func(me *recordLayer) []byte {
			var b []byte
			for i := range 300 {
				b = me.seal(b, []byte{'a' + byte(i%26)})
			}
			return b
		}, string(bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz"), 12)[:300]), ok},
	}
	engines(t, func(t *testing.T, engine string) {
		r := eventRelay(t, 1, engine)
		addr := backendServer(t, func(c net.Conn) { echo(c, 0) })
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				_, sock, keys, done := startTLSSession(t, r, addr, &testTracker{})
				me := peerLayer(t, keys)
				if _, err := sock.Write(tc.build(me)); err != nil {
					t.Fatal(err)
				}
				if tc.alert == ok {
					got, _, err := readToEnd(t, sock, me, len(tc.echo))
					if err != nil || string(got) != tc.echo {
						t.Fatalf("echoed %q, %v; want %q", got, err, tc.echo)
					}
					if _, err := sock.Write(me.seal(nil, []byte{goodbye})); err != nil {
						t.Fatal(err)
					}
				}
				got, alerts, err := readToEnd(t, sock, me, 0)
				waitEnd(t, done)
				want := [2]byte{2, tc.alert}
				if tc.alert == ok {
					want, tc.echo = [2]byte{1, alertCloseNotify}, ""
				}
				if err != nil || string(got) != tc.echo || len(alerts) != 1 || alerts[0] != want {
					t.Fatalf("the session ended with data %q, alerts %v, %v; want %q, alert %v", got, alerts, err, tc.echo, want)
				}
			})
		}
	})
}

// The same for a backend's records: session tickets (skipped, however
// cut), KeyUpdates, and what a server may not send after the handshake.
// The client (plaintext here) reads the data that must come through; the
// backend reads close_notify after the client's goodbye, or the fatal
// alert that names the fault.
func TestEventRelayTLSBackendRecords(t *testing.T) {
	hs := func(be *recordLayer, b []byte, msg ...byte) []byte { return be.out.seal(b, recordHandshake, msg) }
	ticket := func(n int) []byte {
		return append([]byte{hsNewSessionTicket, byte(n >> 16), byte(n >> 8), byte(n)}, seqBytes(n, 9)...)
	}
	const ok = 0xff
	cases := []struct {
		name  string
		build func(be *recordLayer) []byte
		data  string
		alert byte
	}{
		{"ticket", func(be *recordLayer) []byte { return be.seal(hs(be, nil, ticket(200)...), []byte("rows")) }, "rows", ok},
		{"two tickets in a record", func(be *recordLayer) []byte {
			return be.seal(hs(be, nil, append(ticket(10), ticket(300)...)...), []byte("rows"))
		}, "rows", ok},
		{"ticket cut over three records", func(be *recordLayer) []byte {
			tk := ticket(5000)
			b := hs(be, be.seal(nil, []byte("a")), tk[:3]...)
			b = hs(be, b, tk[3:2000]...)
			b = hs(be, b, tk[2000:]...)
			return be.seal(b, []byte("b"))
		}, "ab", ok},
		{"ticket then KeyUpdate in a record", func(be *recordLayer) []byte {
			b := hs(be, nil, append(ticket(50), hsKeyUpdate, 0, 0, 1, 1)...)
			if err := be.out.update(); err != nil {
				t.Fatal(err)
			}
			return be.seal(b, []byte("rows"))
		}, "rows", ok},
		{"ticket over 64 KiB", func(be *recordLayer) []byte {
			tk := ticket(maxHandshakeMsg + 1)
			var b []byte
			for len(tk) > 0 {
				n := min(len(tk), maxPlaintext)
				b = hs(be, b, tk[:n]...)
				tk = tk[n:]
			}
			return b
		}, "", alertUnexpectedMessage},
		{"ticket cut by application data", func(be *recordLayer) []byte { return be.seal(hs(be, nil, ticket(100)[:50]...), []byte("x")) }, "", alertUnexpectedMessage},
		{"CertificateRequest after the handshake", func(be *recordLayer) []byte { return hs(be, nil, 13, 0, 0, 5, 0, 0, 2, 0, 0) }, "", alertUnexpectedMessage},
		{"only padding", func(be *recordLayer) []byte { return be.out.seal(nil, 0, make([]byte, 10)) }, "", alertUnexpectedMessage},
		{"record over 2^14+256", func(be *recordLayer) []byte { return []byte{recordAppData, 3, 3, 0xff, 0xff} }, "", alertRecordOverflow},
	}
	engines(t, func(t *testing.T, engine string) {
		r := eventRelay(t, 1, engine)
		for i, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				g, b := socketPair(t)
				suite := tls.TLS_AES_256_GCM_SHA384
				s1, s2 := bytes.Repeat([]byte{byte(i)}, 48), bytes.Repeat([]byte{byte(i + 100)}, 48)
				keys := &TLSKeys{CipherSuite: suite, ReadSecret: s1, WriteSecret: s2, PeerServer: true}
				be, err := newRecordLayer(&TLSKeys{CipherSuite: suite, ReadSecret: s2, WriteSecret: s1})
				if err != nil {
					t.Fatal(err)
				}
				client, server := socketPair(t)
				done := make(chan ended, 1)
				tr := &testTracker{farewell: []byte("bye")}
				if _, err := r.Start(Session{Client: server, Backend: g, BackendTLS: keys, Tracker: tr,
					End: func(up, down int64) { done <- ended{up, down} }}); err != nil {
					t.Fatal(err)
				}
				client.SetDeadline(time.Now().Add(10 * time.Second))
				if _, err := b.Write(tc.build(be)); err != nil {
					t.Fatal(err)
				}
				want := tc.data
				if tc.alert != ok {
					want += "bye"
				}
				got := make([]byte, len(want))
				if _, err := io.ReadFull(client, got); err != nil || string(got) != want {
					t.Fatalf("client read %q, %v; want %q", got, err, want)
				}
				if tc.alert == ok {
					client.Write([]byte{'x', goodbye})
				}
				data, alerts, err := readToEnd(t, b, be, 0)
				waitEnd(t, done)
				wantAlert := [2]byte{2, tc.alert}
				if tc.alert == ok {
					wantAlert = [2]byte{1, alertCloseNotify}
					if string(data) != "x" {
						t.Fatalf("backend read %q, want what came before the goodbye", data)
					}
				}
				if err != nil || len(alerts) != 1 || alerts[0] != wantAlert {
					t.Fatalf("backend read alerts %v, %v; want %v", alerts, err, wantAlert)
				}
			})
		}
	})
}

// A client that resumes its TLS session (a PSK handshake from a ticket of
// the server's) is carried on a loop as a full handshake is: the tap's
// keys and counts hold for the resumed connection too.
func TestEventRelayTLSResumedSession(t *testing.T) {
	engines(t, func(t *testing.T, engine string) {
		r := eventRelay(t, 1, engine)
		addr := backendServer(t, func(c net.Conn) { echo(c, 0) })
		base := &tls.Config{Certificates: []tls.Certificate{testCert(t)}}
		base.SetSessionTicketKeys([][32]byte{{1, 2, 3}})
		cache := tls.NewLRUClientSessionCache(4)
		for i := range 3 {
			c, s := socketPair(t)
			tap := NewTLSTap(s)
			cfg := base.Clone()
			cfg.KeyLogWriter = tap.KeyLog()
			srv := tls.Server(tap, cfg)
			cli := tls.Client(c, &tls.Config{InsecureSkipVerify: true, ServerName: "gateway", ClientSessionCache: cache})
			errc := make(chan error, 1)
			go func() { errc <- cli.Handshake() }()
			if err := srv.Handshake(); err != nil {
				t.Fatal(err)
			}
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
			if resumed := srv.ConnectionState().DidResume; resumed != (i > 0) {
				t.Fatalf("connection %d: resumed %v", i, resumed)
			}
			tap.Handshaken(srv.ConnectionState())
			keys, err := tap.Keys(exchange(t, cli, srv))
			if err != nil {
				t.Fatalf("connection %d: %v", i, err)
			}
			backend, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan ended, 1)
			if _, err := r.Start(Session{Client: s, ClientTLS: keys, Backend: backend, Tracker: &testTracker{}, End: func(up, down int64) { done <- ended{up, down} }}); err != nil {
				t.Fatal(err)
			}
			cli.SetDeadline(time.Now().Add(10 * time.Second))
			roundTrip(t, cli, []byte("resumed?"))
			roundTrip(t, cli, seqBytes(40000, byte(i)))
			cli.Write([]byte{goodbye})
			waitEnd(t, done)
			if n, err := cli.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Fatalf("connection %d: after the end %d, %v; want close_notify", i, n, err)
			}
		}
	})
}

// A client that sends data and its close_notify in one write, as
// tls.Conn's Write then Close may, loses nothing: the backend reads the
// data before the session ends, as it does from crypto/tls (the goroutine
// relay) and from a plaintext client that hangs up after a write.
func TestEventRelayTLSDataThenCloseNotify(t *testing.T) {
	engines(t, func(t *testing.T, engine string) {
		r := eventRelay(t, 1, engine)
		addr, got := readingBackend(t)
		// Small, and more than the backend's socket takes at once.
		for i, n := range []int{1000, 5000, 8 << 20, 16 << 20} {
			_, sock, keys, done := startTLSSession(t, r, addr, &testTracker{})
			me := peerLayer(t, keys)
			// No goodbye byte in it (testTracker).
			data := bytes.Repeat([]byte{'a' + byte(i)}, n)
			msg := me.seal(nil, data)
			msg = append(msg, me.alertRecord(alertCloseNotify)...)
			go sock.Write(msg)
			waitEnd(t, done)
			wantBackendRead(t, got, i, data, "close_notify")
		}
	})
}

// The same with a backend whose socket takes little and that reads only a
// while later: what the loop could not write yet when the client's
// close_notify came must still reach it.
func TestEventRelayTLSDataThenCloseNotifySlowBackend(t *testing.T) {
	engines(t, func(t *testing.T, engine string) {
		r := eventRelay(t, 1, engine)
		cli, srv, tap, sock := tlsPair(t, nil)
		keys, err := tap.Keys(exchange(t, cli, srv))
		if err != nil {
			t.Fatal(err)
		}
		gw, be := smallUnixPair(t)
		done := make(chan ended, 1)
		if _, err := r.Start(Session{Client: sock, ClientTLS: keys, Backend: gw, Tracker: &testTracker{}, End: func(up, down int64) { done <- ended{up, down} }}); err != nil {
			t.Fatal(err)
		}
		me := peerLayer(t, keys)
		data := bytes.Repeat([]byte{'q'}, 1<<20)
		go cli.NetConn().Write(append(me.seal(nil, data), me.alertRecord(alertCloseNotify)...))
		got := make(chan []byte, 1)
		go func() {
			// Late, so that the loop has the close_notify while most of
			// the data waits for the backend's socket. (A session that
			// ends before then has dropped it: the failure shown.)
			select {
			case <-done:
			case <-time.After(300 * time.Millisecond):
			}
			be.SetReadDeadline(time.Now().Add(10 * time.Second))
			b, _ := io.ReadAll(be)
			got <- b
		}()
		if b := <-got; !bytes.Equal(b, data) {
			t.Fatalf("the backend read %d of the %d bytes sent before close_notify", len(b), len(data))
		}
	})
}

// A backend's data before its close_notify (PostgreSQL's FATAL, then
// close_notify) reaches a client that reads it late, all of it.
func TestEventRelayTLSBackendDataThenCloseNotify(t *testing.T) {
	engines(t, func(t *testing.T, engine string) {
		r := eventRelay(t, 1, engine)
		be, b, client, done := startBackendTLSSession(t, r, &testTracker{})
		data := bytes.Repeat([]byte{'r'}, 1<<20)
		go b.Write(append(be.seal(nil, data), be.alertRecord(alertCloseNotify)...))
		got := readLate(client, done)
		if !bytes.Equal(got, data) {
			t.Fatalf("the client read %d of the %d bytes the backend sent before close_notify", len(got), len(data))
		}
		waitEnd(t, done)
	})
}

// A record that does not open ends the session with bad_record_mac, but
// the records before it, in the same read or not, were the client's own:
// they reach the backend, as crypto/tls delivers them (its Read returns
// their data, and the error after).
func TestEventRelayTLSDataThenBadRecord(t *testing.T) {
	engines(t, func(t *testing.T, engine string) {
		r := eventRelay(t, 1, engine)
		addr, got := readingBackend(t)
		for i, n := range []int{100, 200000} {
			_, sock, keys, done := startTLSSession(t, r, addr, &testTracker{})
			me := peerLayer(t, keys)
			data := bytes.Repeat([]byte{'a' + byte(i)}, n)
			msg := me.seal(nil, data)
			bad := me.seal(nil, []byte("tampered"))
			bad[len(bad)-1] ^= 1
			go sock.Write(append(msg, bad...))
			_, alerts, err := readToEnd(t, sock, me, 0)
			waitEnd(t, done)
			if err != nil || len(alerts) != 1 || alerts[0] != [2]byte{2, alertBadRecordMAC} {
				t.Fatalf("session %d: the client read alerts %v, %v; want bad_record_mac", i, alerts, err)
			}
			wantBackendRead(t, got, i, data, "the bad record")
		}
	})
}

// A backend that sends close_notify and then hangs up, while the client
// still reads what came before: the client gets it, and the tracker's
// farewell once. The alert comes with the data, or in a write of its own.
func TestEventRelayTLSBackendCloseNotifyThenHangUp(t *testing.T) {
	for _, apart := range []bool{false, true} {
		t.Run(map[bool]string{false: "together", true: "apart"}[apart], func(t *testing.T) { testBackendCloseNotifyThenHangUp(t, apart) })
	}
}

func testBackendCloseNotifyThenHangUp(t *testing.T, apart bool) {
	engines(t, func(t *testing.T, engine string) {
		r := eventRelay(t, 1, engine)
		be, b, client, done := startBackendTLSSession(t, r, &testTracker{farewell: []byte("bye")})
		data := bytes.Repeat([]byte{'r'}, 1<<20)
		go func() {
			if apart {
				b.Write(be.seal(nil, data))
				b.Write(be.alertRecord(alertCloseNotify))
			} else {
				b.Write(append(be.seal(nil, data), be.alertRecord(alertCloseNotify)...))
			}
			b.Close()
		}()
		got := readLate(client, done)
		if want := append(data, "bye"...); !bytes.Equal(got, want) {
			t.Fatalf("the client read %d bytes ending %q; want %d ending in one farewell", len(got), got[max(0, len(got)-8):], len(want))
		}
		waitEnd(t, done)
	})
}

// readingBackend is a backend server that reads each connection to its
// end and passes on what it read.
func readingBackend(t *testing.T) (addr string, got <-chan []byte) {
	t.Helper()
	ch := make(chan []byte, 16)
	addr = backendServer(t, func(c net.Conn) {
		defer c.Close()
		b, _ := io.ReadAll(c)
		ch <- b
	})
	return addr, ch
}

// wantBackendRead fails unless session's backend connection, from
// readingBackend, ends having read data, all that was sent before what
// before names.
func wantBackendRead(t *testing.T, got <-chan []byte, session int, data []byte, before string) {
	t.Helper()
	select {
	case b := <-got:
		if !bytes.Equal(b, data) {
			t.Fatalf("session %d: the backend read %d of the %d bytes sent before %s", session, len(b), len(data), before)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the backend's connection did not end")
	}
}

// startBackendTLSSession starts a session on r whose backend side speaks
// TLS: be seals records as the backend, written on b; the client reads
// through a small socket, client.
func startBackendTLSSession(t *testing.T, r *EventRelay, tr Tracker) (be *recordLayer, b, client net.Conn, done chan ended) {
	t.Helper()
	g, b := socketPair(t)
	suite := tls.TLS_AES_128_GCM_SHA256
	s1, s2 := bytes.Repeat([]byte{7}, 32), bytes.Repeat([]byte{8}, 32)
	be, err := newRecordLayer(&TLSKeys{CipherSuite: suite, ReadSecret: s2, WriteSecret: s1})
	if err != nil {
		t.Fatal(err)
	}
	client, server := smallUnixPair(t)
	done = make(chan ended, 1)
	if _, err := r.Start(Session{Client: server, Backend: g, BackendTLS: &TLSKeys{CipherSuite: suite, ReadSecret: s1, WriteSecret: s2, PeerServer: true},
		Tracker: tr, End: func(up, down int64) { done <- ended{up, down} }}); err != nil {
		t.Fatal(err)
	}
	return be, b, client, done
}

// readLate reads all the client gets, starting once the session has ended
// or a while later, so that what the backend sent waits in the relay
// first.
func readLate(client net.Conn, done chan ended) []byte {
	select {
	case <-done:
	case <-time.After(300 * time.Millisecond):
	}
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, _ := io.ReadAll(client)
	return got
}
