package relay

import (
	"bytes"
	"crypto/tls"
	"testing"
)

// FuzzRecordLayer feeds the record layer a stream built from the input,
// cut into reads as the loops cut it (absorb, carry): records the peer
// seals of any type and content, KeyUpdates, and raw bytes. No input may
// panic, and when the stream holds only well-formed application data and
// KeyUpdates, the data comes out whole and in order.
func FuzzRecordLayer(f *testing.F) {
	f.Add([]byte{1, 23, 0, 5, 'h', 'e', 'l', 'l', 'o', 2, 1, 1, 23, 0, 1, 'x'}, []byte{3, 1, 7}, false)
	f.Add([]byte{1, 22, 0, 4, 4, 0, 0, 0}, []byte{100}, true)
	f.Add([]byte{0, 5, 23, 3, 3, 0, 0}, []byte{1}, false)
	f.Fuzz(func(t *testing.T, ops, cuts []byte, peerServer bool) {
		a, b := layers(t, tls.TLS_AES_128_GCM_SHA256)
		b.peerServer = peerServer
		var stream, want []byte
		clean := true
		kus := 0
		for len(ops) > 0 {
			op := ops[0] % 3
			ops = ops[1:]
			switch op {
			case 0: // raw bytes
				if len(ops) == 0 {
					break
				}
				n := min(int(ops[0]), len(ops)-1)
				stream = append(stream, ops[1:1+n]...)
				ops = ops[1+n:]
				clean = false
			case 1: // a sealed record: type, 16-bit length, content
				if len(ops) < 3 {
					ops = nil
					break
				}
				typ, n := ops[0], int(ops[1])<<8|int(ops[2])
				ops = ops[3:]
				n = min(n, maxPlaintext+300)
				p := make([]byte, n)
				copy(p, ops)
				ops = ops[min(n, len(ops)):]
				stream = a.out.seal(stream, typ, p)
				if typ == recordAppData && n <= maxPlaintext {
					want = append(want, p...)
				} else {
					clean = false
				}
			case 2: // a KeyUpdate, update_requested or not
				if len(ops) == 0 {
					break
				}
				stream = a.out.seal(stream, recordHandshake, []byte{hsKeyUpdate, 0, 0, 1, ops[0] & 1})
				if err := a.out.update(); err != nil {
					t.Fatal(err)
				}
				ops = ops[1:]
				if kus++; kus > int(keyUpdateFree) {
					clean = false // refused by design (TestRecordLayerBoundsKeyUpdates)
				}
			}
		}
		var got []byte
		buf := make([]byte, 2*(recordHeaderLen+maxCiphertext)+1024)
		var err error
		for i := 0; len(stream) > 0 && err == nil && !b.eof; i++ {
			step := 1 << 14
			if len(cuts) > 0 {
				step = int(cuts[i%len(cuts)]) + 1
				if cuts[i%len(cuts)]&1 == 1 {
					step *= 97
				}
			}
			chunk := stream[:min(step, len(stream))]
			stream = stream[len(chunk):]
			if b.absorb(chunk) {
				continue
			}
			off := copy(buf, b.pending)
			n := copy(buf[off:], chunk)
			var plain, used int
			plain, used, err = b.openRecords(buf[:off+n])
			if err == nil {
				b.carry(buf[used : off+n])
			}
			got = append(got, buf[:plain]...)
			b.takeReply()
		}
		if clean && err == nil && !bytes.Equal(got, want) {
			t.Fatalf("got %d bytes, want %d", len(got), len(want))
		}
		if clean && err != nil {
			t.Fatalf("well-formed stream refused: %v", err)
		}
	})
}
