package relay

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
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
			if rerr == io.EOF {
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
