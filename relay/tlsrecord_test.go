package relay

import (
	"bytes"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Key and IV from a traffic secret as RFC 8448 §3 publishes them (the
// server's handshake traffic secret of its simple 1-RTT handshake, with
// TLS_AES_128_GCM_SHA256).
func TestTrafficKeysRFC8448(t *testing.T) {
	var k trafficKeys
	secret := unhex(t, "b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4 e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38")
	h, keyLen, _ := supportedSuite(tls.TLS_AES_128_GCM_SHA256)
	if got, err := expandLabel(h, secret, "key", keyLen); err != nil || !bytes.Equal(got, unhex(t, "3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc")) {
		t.Errorf("key % x, %v", got, err)
	}
	if err := k.init(tls.TLS_AES_128_GCM_SHA256, secret, 0); err != nil {
		t.Fatal(err)
	}
	if want := unhex(t, "5d 31 3e b2 67 12 76 ee 13 00 0b 30"); !bytes.Equal(k.iv[:], want) {
		t.Errorf("iv % x, want % x", k.iv, want)
	}
	if err := k.init(tls.TLS_CHACHA20_POLY1305_SHA256, secret, 0); err == nil {
		t.Error("ChaCha20-Poly1305 accepted: the standard library has no AEAD for it")
	}
}

// layers are the two ends of a connection: a's writes are b's reads.
func layers(t testing.TB, suite uint16) (a, b *recordLayer) {
	t.Helper()
	s1, s2 := bytes.Repeat([]byte{1}, 48), bytes.Repeat([]byte{2}, 48)
	if suite == tls.TLS_AES_128_GCM_SHA256 {
		s1, s2 = s1[:32], s2[:32]
	}
	var err error
	if a, err = newRecordLayer(&TLSKeys{CipherSuite: suite, ReadSecret: s1, WriteSecret: s2, ReadSeq: 3, WriteSeq: 7}); err != nil {
		t.Fatal(err)
	}
	if b, err = newRecordLayer(&TLSKeys{CipherSuite: suite, ReadSecret: s2, WriteSecret: s1, ReadSeq: 7, WriteSeq: 3}); err != nil {
		t.Fatal(err)
	}
	return a, b
}

// receive feeds stream to rl in reads of at most step bytes, as a loop
// does (what a read leaves of a record comes first in the next), and
// returns the application data.
func receive(t testing.TB, rl *recordLayer, stream []byte, step int) ([]byte, error) {
	t.Helper()
	var got []byte
	buf := make([]byte, 64<<10)
	for len(stream) > 0 {
		off := copy(buf, rl.pending)
		n := copy(buf[off:], stream[:min(step, len(stream))])
		stream = stream[n:]
		plain, used, err := rl.openRecords(buf[:off+n])
		if err != nil {
			return got, err
		}
		rl.carry(buf[used : off+n])
		got = append(got, buf[:plain]...)
	}
	if len(rl.pending) != 0 && !rl.eof {
		t.Fatalf("%d bytes of a record left over", len(rl.pending))
	}
	return got, nil
}

func TestRecordLayerRoundTrip(t *testing.T) {
	for _, suite := range []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384} {
		t.Run(tls.CipherSuiteName(suite), func(t *testing.T) {
			for _, n := range []int{0, 1, 100, maxPlaintext - 1, maxPlaintext, maxPlaintext + 1, 3*maxPlaintext + 5} {
				for _, step := range []int{1, 7, 4096, 64 << 10} {
					if n > 2*maxPlaintext && step < 4096 {
						continue
					}
					a, b := layers(t, suite)
					msg := seqBytes(n, byte(n))
					// Three messages in one stream: many records per read,
					// and with a small step, records cut across reads.
					var stream []byte
					for range 3 {
						stream = a.seal(stream, msg)
					}
					if records := (n + maxPlaintext - 1) / maxPlaintext; len(stream) != 3*sealedLen(n) || records > 0 && len(stream) != 3*(n+records*recordOverhead) {
						t.Fatalf("%d bytes sealed into %d, want 3×%d", n, len(stream), sealedLen(n))
					}
					got, err := receive(t, b, stream, step)
					if err != nil || !bytes.Equal(got, bytes.Repeat(msg, 3)) {
						t.Fatalf("n %d step %d: got %d bytes, %v", n, step, len(got), err)
					}
					if a.out.seq != b.in.seq {
						t.Fatalf("sequence numbers %d sealed, %d opened", a.out.seq, b.in.seq)
					}
				}
			}
		})
	}
}

// Every record of 16 KiB of content or less is accepted; a longer one, or
// a longer header, is record_overflow.
func TestRecordLayerLimits(t *testing.T) {
	a, b := layers(t, tls.TLS_AES_128_GCM_SHA256)
	full := a.seal(nil, seqBytes(maxPlaintext, 1))
	if len(full) != maxPlaintext+recordOverhead {
		t.Fatalf("a full record is %d bytes", len(full))
	}
	if got, err := receive(t, b, full, 64<<10); err != nil || len(got) != maxPlaintext {
		t.Fatalf("full record: %d bytes, %v", len(got), err)
	}
	// One byte more of content: sealed by hand as one record.
	over := a.out.seal(nil, recordAppData, seqBytes(maxPlaintext+1, 1))
	if _, err := receive(t, b, over, 64<<10); !isAlert(err, alertRecordOverflow) || b.alert != alertRecordOverflow {
		t.Fatalf("16 KiB + 1 of content: %v", err)
	}
	_, b = layers(t, tls.TLS_AES_128_GCM_SHA256)
	if _, err := receive(t, b, []byte{recordAppData, 3, 3, 0x41, 0x01}, 64<<10); !isAlert(err, alertRecordOverflow) {
		t.Fatalf("a header announcing 2^14+257 bytes: %v", err)
	}
}

func isAlert(err error, desc byte) bool {
	var e *errTLS
	return errors.As(err, &e) && e.desc == desc
}

// Zero padding after the content type is stripped; a record that is all
// padding is refused.
func TestRecordLayerPadding(t *testing.T) {
	a, b := layers(t, tls.TLS_AES_256_GCM_SHA384)
	padded := func(inner []byte) []byte {
		n := len(inner) + 16
		rec := []byte{recordAppData, 3, 3, byte(n >> 8), byte(n)}
		return a.out.aead.Seal(rec, a.out.nextNonce(), inner, rec)
	}
	stream := padded(append([]byte("hello\x17"), make([]byte, 300)...))
	stream = append(stream, padded([]byte("\x00ok\x17\x00"))...)
	got, err := receive(t, b, stream, 64<<10)
	if err != nil || string(got) != "hello\x00ok" {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, err := receive(t, b, padded(make([]byte, 20)), 64<<10); !isAlert(err, alertUnexpectedMessage) {
		t.Fatalf("all padding: %v", err)
	}
}

// A record changed on the way, replayed, or sealed out of order does not
// open: bad_record_mac.
func TestRecordLayerRefusesTampering(t *testing.T) {
	for name, spoil := range map[string]func(first, second []byte) []byte{
		"tag":      func(f, s []byte) []byte { f[len(f)-1] ^= 1; return f },
		"content":  func(f, s []byte) []byte { f[recordHeaderLen+2] ^= 0x80; return f },
		"header":   func(f, s []byte) []byte { f[2] = 1; return f },
		"replay":   func(f, s []byte) []byte { return append(append(f, f...), s...) },
		"reorder":  func(f, s []byte) []byte { return append(s, f...) },
		"plain":    func(f, s []byte) []byte { return []byte{recordHandshake, 3, 3, 0, 1, 1} },
		"truncate": func(f, s []byte) []byte { return []byte{recordAppData, 3, 3, 0, 10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10} },
	} {
		t.Run(name, func(t *testing.T) {
			a, b := layers(t, tls.TLS_AES_128_GCM_SHA256)
			first := a.seal(nil, []byte("first"))
			second := a.seal(nil, []byte("second"))
			got, err := receive(t, b, spoil(first, second), 64<<10)
			if err == nil || b.alert == alertCloseNotify {
				t.Fatalf("accepted (%q), alert %d", got, b.alert)
			}
			if bytes.Contains(got, []byte("second")) {
				t.Fatalf("content after the bad record passed: %q", got)
			}
		})
	}
}

// A KeyUpdate moves the reader's keys on; one that asks for an update has
// the reader answer with its own, under its old keys, and move its write
// keys on too. close_notify ends the stream; what follows it is dropped.
func TestRecordLayerKeyUpdateAndClose(t *testing.T) {
	for _, suite := range []uint16{tls.TLS_AES_128_GCM_SHA256, tls.TLS_AES_256_GCM_SHA384} {
		a, b := layers(t, suite)
		stream := a.seal(nil, []byte("before "))
		stream = a.out.seal(stream, recordHandshake, []byte{hsKeyUpdate, 0, 0, 1, 1})
		old := a.out.secret
		if err := a.out.update(); err != nil {
			t.Fatal(err)
		}
		if a.out.seq != 0 || bytes.Equal(old, a.out.secret) || len(a.out.secret) != len(old) {
			t.Fatal("update did not move to a new secret of the same size")
		}
		stream = a.seal(stream, []byte("after"))
		got, err := receive(t, b, stream, 3)
		if err != nil || string(got) != "before after" {
			t.Fatalf("got %q, %v", got, err)
		}
		reply := b.takeReply()
		if len(reply) == 0 {
			t.Fatal("no KeyUpdate in answer to update_requested")
		}
		// a reads b's answer (under b's old keys), then b's new records.
		reply = b.seal(reply, []byte("answer"))
		if got, err := receive(t, a, reply, 64<<10); err != nil || string(got) != "answer" {
			t.Fatalf("after b's KeyUpdate: %q, %v", got, err)
		}
		if a.reply != nil {
			t.Fatal("a KeyUpdate without update_requested was answered")
		}
		// A KeyUpdate must end its record.
		_, b2 := layers(t, suite)
		a2, _ := layers(t, suite)
		bad := a2.out.seal(nil, recordHandshake, []byte{hsKeyUpdate, 0, 0, 1, 0, hsKeyUpdate})
		if _, err := receive(t, b2, bad, 64<<10); !isAlert(err, alertUnexpectedMessage) {
			t.Fatalf("data after a KeyUpdate in its record: %v", err)
		}
		// Other handshake messages are refused.
		a3, b3 := layers(t, suite)
		if _, err := receive(t, b3, a3.out.seal(nil, recordHandshake, []byte{4, 0, 0, 0}), 64<<10); !isAlert(err, alertUnexpectedMessage) {
			t.Fatalf("a NewSessionTicket from the client: %v", err)
		}
		// close_notify.
		a4, b4 := layers(t, suite)
		stream = a4.seal(nil, []byte("last"))
		stream = a4.out.seal(stream, recordAlert, []byte{1, alertCloseNotify})
		stream = a4.seal(stream, []byte("ignored"))
		if got, err := receive(t, b4, stream, 64<<10); err != nil || string(got) != "last" || !b4.eof {
			t.Fatalf("close_notify: %q, eof %v, %v", got, b4.eof, err)
		}
		// Ours, read by a4.
		a4.eof = false
		if _, err := receive(t, a4, b4.closeAlert(), 64<<10); err != nil || !a4.eof {
			t.Fatalf("our close_notify: eof %v, %v", a4.eof, err)
		}
	}
}

func BenchmarkRecordLayerSealOpen(b *testing.B) {
	x, y := layers(b, tls.TLS_AES_128_GCM_SHA256)
	msg := seqBytes(200, 1)
	buf := make([]byte, 0, 1024)
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		buf = x.seal(buf[:0], msg)
		if _, _, err := y.openRecords(buf); err != nil {
			b.Fatal(err)
		}
	}
}

// seqBytes is n bytes that differ from record to record.
func seqBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) + seed + byte(i>>14)
	}
	return b
}

// RFC 8446 §5.4: the inner plaintext (content, type and padding) is at
// most 2^14 + 1 bytes, and a record whose inner plaintext is longer is
// record_overflow even when most of it is padding, as crypto/tls has it.
// One of exactly 2^14 + 1 bytes opens.
func TestRecordLayerRefusesOverlongPadding(t *testing.T) {
	sealInner := func(a *recordLayer, inner []byte) []byte {
		n := len(inner) + 16
		rec := []byte{recordAppData, 3, 3, byte(n >> 8), byte(n)}
		return a.out.aead.Seal(rec, a.out.nextNonce(), inner, rec)
	}
	a, b := layers(t, tls.TLS_AES_128_GCM_SHA256)
	inner := append(append(seqBytes(100, 3), recordAppData), make([]byte, maxPlaintext+1-101)...)
	if got, err := receive(t, b, sealInner(a, inner), 64<<10); err != nil || !bytes.Equal(got, seqBytes(100, 3)) {
		t.Fatalf("inner plaintext of 2^14+1 bytes: %d bytes, %v", len(got), err)
	}
	inner = append(append(seqBytes(100, 3), recordAppData), make([]byte, 16300)...)
	if got, err := receive(t, b, sealInner(a, inner), 64<<10); !isAlert(err, alertRecordOverflow) || b.alert != alertRecordOverflow {
		t.Fatalf("inner plaintext of %d bytes, mostly padding: %d bytes opened, %v", len(inner), len(got), err)
	}
}

// KeyUpdates cost a loop key derivations each (and a session's loop is
// shared), so a peer gets keyUpdateFree of them plus one per 16 KiB of
// application data it sent: found in a review, a flood of 27-byte
// KeyUpdates cost a loop ~5 ms per 64 KB read. Past the allowance the
// session ends with unexpected_message; data earns more.
func TestRecordLayerBoundsKeyUpdates(t *testing.T) {
	a, b := layers(t, tls.TLS_AES_128_GCM_SHA256)
	keyUpdate := func(stream []byte) []byte {
		stream = a.out.seal(stream, recordHandshake, []byte{hsKeyUpdate, 0, 0, 1, 0})
		if err := a.out.update(); err != nil {
			t.Fatal(err)
		}
		return stream
	}
	var stream []byte
	for range int(keyUpdateFree) {
		stream = keyUpdate(stream)
	}
	stream = a.seal(stream, seqBytes(4<<14, 1)) // earns four more
	for range 4 {
		stream = keyUpdate(stream)
	}
	if got, err := receive(t, b, stream, 64<<10); err != nil || len(got) != 4<<14 {
		t.Fatalf("within the allowance: %d bytes, %v", len(got), err)
	}
	if _, err := receive(t, b, keyUpdate(nil), 64<<10); !isAlert(err, alertUnexpectedMessage) {
		t.Fatalf("one KeyUpdate past the allowance: %v, want unexpected_message", err)
	}
}

// RFC 8446 §5.3: a sequence number must not wrap; an implementation that
// would wrap one must rekey or end the connection. Sealing, the layer
// sends a KeyUpdate with the last number (2^64-1) and goes on under new
// keys, so no nonce is used twice under one key; opening, a record past
// 2^64-1 without a KeyUpdate is refused. Unreachable in practice (2^64
// records), but each guard is a comparison.
func TestRecordSequenceNumbersDoNotWrap(t *testing.T) {
	const last = ^uint64(0)
	a, b := layers(t, tls.TLS_AES_128_GCM_SHA256)
	// The record a seals with sequence number 0 under its first keys: a
	// wrapped sequence number would seal it again.
	a0, _ := layers(t, tls.TLS_AES_128_GCM_SHA256)
	a0.out.seq = 0
	zero := a0.seal(nil, []byte("x"))
	a.out.seq, b.in.seq = last-1, last-1
	var stream []byte
	for range 3 {
		stream = a.seal(stream, []byte("x"))
	}
	if i := bytes.Index(stream, zero); i >= 0 {
		t.Fatalf("the records sealed from sequence number 2^64-2 on include, at byte %d, the record of sequence number 0 under the same key: the sequence number wrapped and a nonce was used twice", i)
	}
	if got, err := receive(t, b, stream, 64<<10); err != nil || string(got) != "xxx" {
		t.Fatalf("across the last sequence number: %q, %v", got, err)
	}
	if a.out.seq != b.in.seq || a.out.seq >= last-1 {
		t.Fatalf("sequence numbers %d sealed, %d opened: want both restarted under new keys", a.out.seq, b.in.seq)
	}

	// A peer that does not rekey: its record 2^64-1 is opened, the next refused.
	c, d := layers(t, tls.TLS_AES_256_GCM_SHA384)
	c.out.seq, d.in.seq = last, last
	if got, err := receive(t, d, c.out.seal(nil, recordAppData, []byte("last")), 64<<10); err != nil || string(got) != "last" {
		t.Fatalf("record 2^64-1: %q, %v", got, err)
	}
	if got, err := receive(t, d, c.out.seal(nil, recordAppData, []byte("wrapped")), 64<<10); !isAlert(err, alertUnexpectedMessage) {
		t.Fatalf("a record after 2^64-1 without a KeyUpdate: got %q, %v; want unexpected_message", got, err)
	}
}
