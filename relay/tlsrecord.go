package relay

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"hash"
	"math"
	"slices"
)

// The TLS 1.3 record layer (RFC 8446 §5) that lets the event loops carry a
// session whose client speaks TLS: after crypto/tls has done the handshake
// and the login, the loop opens the client's records and seals the
// backend's bytes itself, with the traffic secrets the handshake produced
// (TLSTap captures them). Only the AES-GCM suites are supported; the
// standard library exposes no ChaCha20-Poly1305, and a session that
// negotiated it stays on the goroutine relay.

// TLSKeys are what a record layer needs to carry on a TLS 1.3 connection
// whose handshake is done: the suite, the current traffic secrets of the
// peer (opened) and of this side (sealed), and the sequence number of the
// next record each way.
type TLSKeys struct {
	CipherSuite             uint16
	ReadSecret, WriteSecret []byte
	ReadSeq, WriteSeq       uint64
	// PeerServer: this side is the TLS client (the gateway's connection to
	// its backend), so the peer may send session tickets at any time.
	PeerServer bool
}

const (
	recordHeaderLen = 5
	maxPlaintext    = 16384
	// RFC 8446 §5.2: a TLSCiphertext is at most 2^14 + 256 bytes.
	maxCiphertext  = maxPlaintext + 256
	recordOverhead = recordHeaderLen + 1 + 16 // header, inner type, GCM tag

	recordCCS       = 20
	recordAlert     = 21
	recordHandshake = 22
	recordAppData   = 23

	hsNewSessionTicket = 4
	hsKeyUpdate        = 24
	// maxHandshakeMsg bounds a post-handshake message kept across records
	// (a session ticket is a few hundred bytes).
	maxHandshakeMsg = 1 << 16

	alertCloseNotify       = 0
	alertUnexpectedMessage = 10
	alertBadRecordMAC      = 20
	alertRecordOverflow    = 22
	alertDecodeError       = 50
)

// errTLS is a record the session cannot go on after; desc is the alert
// that tells the peer why.
type errTLS struct {
	desc byte
	why  string
}

func (e *errTLS) Error() string { return "tls record: " + e.why }

// supportedSuite reports whether the loops can carry suite, and its hash.
func supportedSuite(suite uint16) (func() hash.Hash, int, bool) {
	switch suite {
	case tls.TLS_AES_128_GCM_SHA256:
		return sha256.New, 16, true
	case tls.TLS_AES_256_GCM_SHA384:
		return sha512.New384, 32, true
	}
	return nil, 0, false
}

// expandLabel is HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
func expandLabel(h func() hash.Hash, secret []byte, label string, length int) ([]byte, error) {
	full := "tls13 " + label
	info := make([]byte, 0, 4+len(full))
	info = binary.BigEndian.AppendUint16(info, uint16(length))
	info = append(info, byte(len(full)))
	info = append(info, full...)
	info = append(info, 0)
	return hkdf.Expand(h, secret, string(info), length)
}

// trafficKeys are one direction's keys (RFC 8446 §7.3).
type trafficKeys struct {
	hash   func() hash.Hash
	suite  uint16
	keyLen int
	secret []byte
	aead   cipher.AEAD
	iv     [12]byte
	seq    uint64
	nonce  [12]byte
	// spent: a record went with sequence number 2^64-1, the last; these
	// keys may seal or open no more (RFC 8446 §5.3), only be updated.
	spent bool
}

func (k *trafficKeys) init(suite uint16, secret []byte, seq uint64) error {
	h, keyLen, ok := supportedSuite(suite)
	if !ok {
		return errors.New("tls record: unsupported cipher suite")
	}
	k.hash, k.suite, k.keyLen, k.seq = h, suite, keyLen, seq
	return k.set(secret)
}

// set derives the key and IV of a traffic secret.
func (k *trafficKeys) set(secret []byte) error {
	key, err := expandLabel(k.hash, secret, "key", k.keyLen)
	if err != nil {
		return err
	}
	iv, err := expandLabel(k.hash, secret, "iv", 12)
	if err != nil {
		return err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return err
	}
	k.secret, k.aead = secret, aead
	copy(k.iv[:], iv)
	return nil
}

// update moves to the next traffic secret (RFC 8446 §7.2) and restarts the
// sequence numbers.
func (k *trafficKeys) update() error {
	next, err := expandLabel(k.hash, k.secret, "traffic upd", k.hash().Size())
	if err != nil {
		return err
	}
	k.seq, k.spent = 0, false
	return k.set(next)
}

// nextNonce is the IV XORed with the record's sequence number, which it
// then advances.
func (k *trafficKeys) nextNonce() []byte {
	k.nonce = k.iv
	for i := range 8 {
		k.nonce[4+i] ^= byte(k.seq >> (56 - 8*i))
	}
	k.seq++
	k.spent = k.seq == 0
	return k.nonce[:]
}

// seal appends one record of type typ carrying p (at most maxPlaintext).
func (k *trafficKeys) seal(dst []byte, typ byte, p []byte) []byte {
	n := len(p) + 1 + k.aead.Overhead()
	// Room for the tag too, so that it is sealed in place.
	dst = slices.Grow(dst, recordHeaderLen+n)
	dst = append(dst, recordAppData, 3, 3, byte(n>>8), byte(n))
	hdr := len(dst) - recordHeaderLen
	dst = append(dst, p...)
	dst = append(dst, typ)
	body := dst[hdr+recordHeaderLen:]
	out := k.aead.Seal(body[:0], k.nextNonce(), body, dst[hdr:hdr+recordHeaderLen])
	return dst[:hdr+recordHeaderLen+len(out)]
}

// open decrypts a whole record in place and returns its content and inner
// type, zero padding stripped.
func (k *trafficKeys) open(rec []byte) ([]byte, byte, error) {
	if rec[0] != recordAppData {
		return nil, 0, &errTLS{alertUnexpectedMessage, "unencrypted record after the handshake"}
	}
	if k.spent {
		// The peer's sequence number would wrap: it should have sent a
		// KeyUpdate with the last one.
		return nil, 0, &errTLS{alertUnexpectedMessage, "record past sequence number 2^64-1 without a KeyUpdate"}
	}
	body := rec[recordHeaderLen:]
	if len(body) < k.aead.Overhead()+1 {
		return nil, 0, &errTLS{alertDecodeError, "record too short"}
	}
	p, err := k.aead.Open(body[:0], k.nextNonce(), body, rec[:recordHeaderLen])
	if err != nil {
		return nil, 0, &errTLS{alertBadRecordMAC, "record authentication failed"}
	}
	// RFC 8446 §5.4: content, type and padding together are at most
	// 2^14 + 1 bytes (crypto/tls checks the same, before the padding).
	if len(p) > maxPlaintext+1 {
		return nil, 0, &errTLS{alertRecordOverflow, "record content too long"}
	}
	i := len(p) - 1
	for i >= 0 && p[i] == 0 {
		i--
	}
	if i < 0 {
		return nil, 0, &errTLS{alertUnexpectedMessage, "record without content type"}
	}
	return p[:i], p[i], nil
}

// recordLayer carries one side of a session over TLS 1.3: records read are
// opened, bytes to send are sealed.
type recordLayer struct {
	in, out trafficKeys
	// pending is a record cut at the end of the last read (a copy, at most
	// one record).
	pending []byte
	hs      []byte // a handshake message cut at the end of a record
	// reply holds sealed bytes the peer must get before anything else
	// sealed later: our KeyUpdate answering one that asked for it.
	reply []byte
	eof   bool // the peer sent close_notify (or another alert), or a bad record
	alert byte // the alert to send when the session ends
	// peerServer: the peer is a TLS server, which may send session
	// tickets (skipped) as well as KeyUpdates.
	peerServer bool
	tickets    int // session tickets skipped
	// deferReply: the write keys belong to another goroutine (TLSConn);
	// a KeyUpdate that asks for an answer sets owed instead, and the
	// owner answers (answerKeyUpdate).
	deferReply, owed bool
	// keyUpdates taken, and the application data opened (bytes): a peer
	// gets keyUpdateFree KeyUpdates and one more per 16 KiB of data.
	keyUpdates, appBytes int64
}

// keyUpdateFree is how many KeyUpdates a peer may send before it has sent
// data to earn more. Each costs this side key derivations (two when it
// asks for an answer) on a loop other sessions share; implementations
// update keys after far more data than 16 KiB, if at all. A variable for
// tests only.
var keyUpdateFree int64 = 16

func newRecordLayer(k *TLSKeys) (*recordLayer, error) {
	rl := &recordLayer{peerServer: k.PeerServer}
	if err := rl.in.init(k.CipherSuite, k.ReadSecret, k.ReadSeq); err != nil {
		return nil, err
	}
	if err := rl.out.init(k.CipherSuite, k.WriteSecret, k.WriteSeq); err != nil {
		return nil, err
	}
	return rl, nil
}

// seal appends p as application data records of at most maxPlaintext
// bytes each.
func (rl *recordLayer) seal(dst, p []byte) []byte {
	for len(p) > 0 {
		if rl.out.seq == math.MaxUint64 {
			// RFC 8446 §5.3: rekey rather than let the sequence number
			// wrap (a nonce used twice under one key): the KeyUpdate
			// takes the last number.
			dst = rl.out.seal(dst, recordHandshake, []byte{hsKeyUpdate, 0, 0, 1, 0})
			if err := rl.out.update(); err != nil {
				panic(err) // HKDF-Expand of a hash's size: cannot fail
			}
		}
		n := min(len(p), maxPlaintext)
		dst = rl.out.seal(dst, recordAppData, p[:n])
		p = p[n:]
	}
	return dst
}

// sealedLen is how many bytes seal makes of n (a KeyUpdate more, once in
// 2^64 records, when the sequence number runs out).
func sealedLen(n int) int {
	return n + (n+maxPlaintext-1)/maxPlaintext*recordOverhead
}

// closeAlert is the alert that ends the session from this side, sealed:
// close_notify, or the error that ended it.
func (rl *recordLayer) closeAlert() []byte { return rl.alertRecord(rl.alert) }

// alertRecord is the alert desc, sealed: a warning for close_notify,
// fatal otherwise.
func (rl *recordLayer) alertRecord(desc byte) []byte {
	level := byte(1)
	if desc != alertCloseNotify {
		level = 2
	}
	return rl.out.seal(nil, recordAlert, []byte{level, desc})
}

// openRecords opens the whole records at the start of buf in place and
// moves their application data to its front: buf[:plain] is what the
// peer sent, buf[used:] a record not yet whole. After an alert nothing
// more is read (eof). A record that is bad ends the session: the error
// says why, and rl.alert is what the peer is told.
func (rl *recordLayer) openRecords(buf []byte) (plain, used int, err error) {
	for !rl.eof && len(buf)-used >= recordHeaderLen {
		rec := buf[used:]
		n := int(binary.BigEndian.Uint16(rec[3:5]))
		if n > maxCiphertext {
			return plain, used, rl.fail(&errTLS{alertRecordOverflow, "record too long"})
		}
		if len(rec) < recordHeaderLen+n {
			break
		}
		used += recordHeaderLen + n
		p, typ, err := rl.in.open(rec[:recordHeaderLen+n])
		if err != nil {
			return plain, used, rl.fail(err)
		}
		if len(rl.hs) > 0 && typ != recordHandshake {
			return plain, used, rl.fail(&errTLS{alertUnexpectedMessage, "handshake message interrupted"})
		}
		switch typ {
		case recordAppData:
			plain += copy(buf[plain:], p)
			rl.appBytes += int64(len(p))
		case recordAlert:
			// close_notify, or an error the peer reports: either way
			// the peer is done.
			rl.eof = true
		case recordHandshake:
			if err := rl.handshake(p); err != nil {
				return plain, used, rl.fail(err)
			}
		default:
			return plain, used, rl.fail(&errTLS{alertUnexpectedMessage, "unexpected record type"})
		}
	}
	return plain, used, nil
}

// fail ends the stream at a bad record: nothing after it is read, and
// the records before it stand (as crypto/tls delivers theirs).
func (rl *recordLayer) fail(err error) error {
	rl.eof = true
	if e, ok := err.(*errTLS); ok {
		rl.alert = e.desc
	}
	return err
}

// handshake takes the handshake messages of a record. After the handshake
// a client may send only KeyUpdate (RFC 8446 §4.6.3): the keys it reads
// with move on, and when the peer asks, this side answers with its own
// KeyUpdate and moves its keys on too. A server may also send session
// tickets (§4.6.1), which this side, never resuming, skips.
func (rl *recordLayer) handshake(p []byte) error {
	rl.hs = append(rl.hs, p...)
	for len(rl.hs) >= 4 {
		typ := rl.hs[0]
		n := int(rl.hs[1])<<16 | int(rl.hs[2])<<8 | int(rl.hs[3])
		switch {
		case typ == hsKeyUpdate && n == 1:
		case typ == hsNewSessionTicket && rl.peerServer && n <= maxHandshakeMsg:
			if len(rl.hs) < 4+n {
				return nil // the rest comes in the next record
			}
			rl.hs = rl.hs[:copy(rl.hs, rl.hs[4+n:])]
			rl.tickets++
			continue
		default:
			return &errTLS{alertUnexpectedMessage, "unexpected handshake message"}
		}
		if len(rl.hs) < 5 {
			break
		}
		requested := rl.hs[4]
		if requested > 1 {
			return &errTLS{alertDecodeError, "bad KeyUpdate"}
		}
		if len(rl.hs) > 5 {
			// It must end its record: the rest is under the next keys.
			return &errTLS{alertUnexpectedMessage, "data after KeyUpdate in its record"}
		}
		rl.hs = rl.hs[:0]
		if rl.keyUpdates++; rl.keyUpdates > keyUpdateFree+rl.appBytes>>14 {
			return &errTLS{alertUnexpectedMessage, "too many KeyUpdates for the data sent"}
		}
		if err := rl.in.update(); err != nil {
			return err
		}
		if requested == 1 {
			if rl.deferReply {
				rl.owed = true
			} else if err := rl.answerKeyUpdate(); err != nil {
				return err
			}
		}
	}
	if len(rl.hs) > 0 && rl.hs[0] != hsKeyUpdate && !(rl.hs[0] == hsNewSessionTicket && rl.peerServer) {
		return &errTLS{alertUnexpectedMessage, "unexpected handshake message"}
	}
	return nil
}

// answerKeyUpdate seals this side's KeyUpdate into reply and moves its
// write keys on.
func (rl *recordLayer) answerKeyUpdate() error {
	rl.reply = rl.out.seal(rl.reply, recordHandshake, []byte{hsKeyUpdate, 0, 0, 1, 0})
	return rl.out.update()
}

// keys is the record state now, for another record layer to carry on
// with (a pooled backend the next session takes).
func (rl *recordLayer) keys() *TLSKeys {
	return &TLSKeys{CipherSuite: rl.in.suite, ReadSecret: rl.in.secret, WriteSecret: rl.out.secret,
		ReadSeq: rl.in.seq, WriteSeq: rl.out.seq, PeerServer: rl.peerServer}
}

// idle reports whether the record layer holds nothing between records:
// no record or handshake message cut, no reply owed, the peer not gone.
func (rl *recordLayer) idle() bool {
	return len(rl.pending) == 0 && len(rl.hs) == 0 && len(rl.reply) == 0 && !rl.owed && !rl.eof
}

// carry keeps the partial record buf[used:] for the next read.
func (rl *recordLayer) carry(rest []byte) {
	rl.pending = append(rl.pending[:0], rest...)
}

// absorb adds chunk, the next bytes read, to the record the last read cut
// when they do not complete it, and reports whether it did: then there is
// nothing to open yet. Each byte of a record is so copied about once, and
// a record a client trickles a byte at a time costs its length, not (by
// rebuilding the cut part at every read) its square.
func (rl *recordLayer) absorb(chunk []byte) bool {
	if len(rl.pending)+len(chunk) >= rl.cutRecordLen() {
		return false
	}
	rl.pending = append(rl.pending, chunk...)
	return true
}

// cutRecordLen is the length of the record pending begins, as far as it
// is known: its header, until the header is whole. A length past the
// limit is the header's own length, so that openRecords refuses it at once.
func (rl *recordLayer) cutRecordLen() int {
	p := rl.pending
	if len(p) < recordHeaderLen {
		return min(len(p), 1) * recordHeaderLen // none cut: 0
	}
	n := int(binary.BigEndian.Uint16(p[3:5]))
	if n > maxCiphertext {
		return recordHeaderLen
	}
	return recordHeaderLen + n
}

// takeReply returns (and forgets) what must be sent to the peer now.
func (rl *recordLayer) takeReply() []byte {
	r := rl.reply
	rl.reply = nil
	return r
}
