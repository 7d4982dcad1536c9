package relay

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"testing"
	"time"
)

// testCert is a self-signed certificate for the TLS tests.
func testCert(t testing.TB) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"relay.test"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsPair runs a TLS handshake over a TCP socket pair, the server over a
// TLSTap: the client's tls.Conn, the server's, its tap, and the server's
// socket.
func tlsPair(t testing.TB, client *tls.Config) (*tls.Conn, *tls.Conn, *TLSTap, net.Conn) {
	t.Helper()
	c, s := socketPair(t)
	tap := NewTLSTap(s)
	cfg := &tls.Config{Certificates: []tls.Certificate{testCert(t)}, MinVersion: tls.VersionTLS12}
	cfg.KeyLogWriter = tap.KeyLog()
	srv := tls.Server(tap, cfg)
	if client == nil {
		client = &tls.Config{}
	}
	client.InsecureSkipVerify = true
	cli := tls.Client(c, client)
	errc := make(chan error, 1)
	go func() { errc <- cli.Handshake() }()
	if err := srv.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	tap.Handshaken(srv.ConnectionState())
	return cli, srv, tap, s
}

// exchange has the client and the server speak through crypto/tls, as a
// login does, and returns how many bytes the server read.
func exchange(t testing.TB, cli, srv *tls.Conn) int64 {
	t.Helper()
	go cli.Write([]byte("startup"))
	buf := make([]byte, 7)
	if _, err := io.ReadFull(srv, buf); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Write([]byte("welcome")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(cli, buf); err != nil || string(buf) != "welcome" {
		t.Fatalf("client read %q, %v", buf, err)
	}
	return 7
}

// After a real crypto/tls handshake (with the session tickets it sends)
// and a login's worth of records each way, the tap's keys carry the
// connection on: what the client's tls.Conn sends opens, and what the
// record layer seals, the client's tls.Conn reads, 16 KiB records and
// close_notify included.
func TestTLSTapHandsOverToRecordLayer(t *testing.T) {
	// A session cache has the server send tickets, under the application
	// keys, before its handshake returns.
	cli, srv, tap, sock := tlsPair(t, &tls.Config{ClientSessionCache: tls.NewLRUClientSessionCache(1)})
	read := exchange(t, cli, srv)
	keys, err := tap.Keys(read)
	if err != nil {
		t.Fatal(err)
	}
	if keys.ReadSeq != 1 || keys.WriteSeq < 2 {
		// One record from the client; at least one session ticket and
		// "welcome" from the server.
		t.Fatalf("sequence numbers read %d, write %d", keys.ReadSeq, keys.WriteSeq)
	}
	rl, err := newRecordLayer(keys)
	if err != nil {
		t.Fatal(err)
	}
	// Client to record layer.
	big := seqBytes(100_000, 3)
	go cli.Write(big)
	var got []byte
	buf := make([]byte, 64<<10)
	sock.SetReadDeadline(time.Now().Add(10 * time.Second))
	for len(got) < len(big) {
		off := copy(buf, rl.pending)
		n, err := sock.Read(buf[off:])
		if err != nil {
			t.Fatal(err)
		}
		plain, used, err := rl.openRecords(buf[:off+n])
		if err != nil {
			t.Fatal(err)
		}
		rl.carry(buf[used : off+n])
		got = append(got, buf[:plain]...)
	}
	if !bytes.Equal(got, big) {
		t.Fatal("the client's bytes came out changed")
	}
	// Record layer to client.
	go func() {
		sock.Write(rl.seal(nil, big))
		sock.Write(rl.closeAlert())
	}()
	cli.SetReadDeadline(time.Now().Add(10 * time.Second))
	back, err := io.ReadAll(cli)
	if err != nil || !bytes.Equal(back, big) {
		t.Fatalf("client read %d bytes, %v", len(back), err)
	}
	// Passed through from now on.
	if !tap.off.Load() {
		t.Fatal("the tap still follows records after Keys")
	}
}

// Plaintext crypto/tls decrypted but the session did not read yet cannot
// go to a loop: Keys says so.
func TestTLSTapRefusesBufferedBytes(t *testing.T) {
	cli, srv, tap, _ := tlsPair(t, nil)
	go cli.Write([]byte("abc"))
	one := make([]byte, 1)
	if _, err := io.ReadFull(srv, one); err != nil {
		t.Fatal(err)
	}
	if _, err := tap.Keys(1); err == nil {
		t.Fatal("Keys with 2 bytes left in crypto/tls")
	}
	// Through, untouched, afterwards.
	rest := make([]byte, 2)
	if _, err := io.ReadFull(srv, rest); err != nil || string(rest) != "bc" {
		t.Fatalf("%q, %v", rest, err)
	}
}

// TLS 1.2 stays with crypto/tls.
func TestTLSTapRefusesTLS12(t *testing.T) {
	cli, srv, tap, _ := tlsPair(t, &tls.Config{MaxVersion: tls.VersionTLS12})
	if tap.Eligible() {
		t.Fatal("TLS 1.2 eligible")
	}
	n := exchange(t, cli, srv)
	if _, err := tap.Keys(n); err == nil {
		t.Fatal("keys for TLS 1.2")
	}
}

// The key log is read only for this connection's traffic secrets.
func TestTLSKeyLog(t *testing.T) {
	tap := NewTLSTap(nil)
	kl := tap.KeyLog()
	for _, line := range []string{
		"CLIENT_HANDSHAKE_TRAFFIC_SECRET 00 0101\n",
		"CLIENT_TRAFFIC_SECRET_0 00 0202\n",
		"SERVER_TRAFFIC_SECRET_0 00 zz\n", // not hex: ignored
		"garbage\n",
	} {
		if n, err := kl.Write([]byte(line)); n != len(line) || err != nil {
			t.Fatalf("%q: %d, %v", line, n, err)
		}
	}
	if !bytes.Equal(tap.secrets[0], []byte{2, 2}) || tap.secrets[1] != nil {
		t.Fatalf("secrets %x", tap.secrets)
	}
	tap.Handshaken(tls.ConnectionState{Version: tls.VersionTLS13, CipherSuite: tls.TLS_AES_128_GCM_SHA256})
	if _, err := tap.Keys(0); err == nil || !errors.Is(err, err) || tap.Eligible() {
		t.Fatal("keys without the server's secret")
	}
}
