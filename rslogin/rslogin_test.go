package rslogin

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// The proofs match the formulas computed independently (Python hashlib):
// md5(hex(md5(pw ‖ user)) ‖ salt) and SHA256(SHA256(pw ‖ salt) ‖ nonces).
func TestProofs(t *testing.T) {
	if got := MD5Response("secret", "IAM:alice", []byte{1, 2, 3, 4}); got != "md582633c1824b0915b9d7e94f98512cf38" {
		t.Errorf("MD5Response = %s", got)
	}
	d := Digest("secret", []byte("0123456789abcdef"), []byte("server-nonce"), []byte("1700000000000"))
	if got := hex.EncodeToString(d); got != "2086d4b371a0b940cb3aab2ddf27c0ba631e3345a2a0af3e4b59f36c0aad9448" {
		t.Errorf("Digest = %s", got)
	}
}

// Found in an attacker's review of the drivers' exchanges: on a plaintext
// connection (shiftkey doctor's driver login without TLS) rslogin answered
// a cleartext password request (code 3) with the password, so whoever
// could answer in the gateway's place (a man in the middle, a squatter on
// the port) got a live credential, good for any login until it expires,
// where relaying code 13 or MD5 gets it one session. The gateway never asks
// for it without TLS; rslogin now refuses to send it there.
func TestCleartextPasswordNotSentWithoutTLS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []byte, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		var n [4]byte
		io.ReadFull(c, n[:])
		io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(n[:]))-4) // the startup packet
		c.Write([]byte{'R', 0, 0, 0, 8, 0, 0, 0, AuthCleartext})
		rest, _ := io.ReadAll(c) // until the client hangs up
		got <- rest
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = Login(ctx, ln.Addr().String(), Config{Params: DriverParams("IAM:alice", "dev"), Password: "the-password"})
	if err == nil {
		t.Fatal("logged in")
	}
	if sent := <-got; bytes.Contains(sent, []byte("the-password")) {
		t.Fatalf("sent the password in cleartext without TLS: %q (error %v)", sent, err)
	}
	if !errors.Is(err, ErrCleartextWithoutTLS) {
		t.Fatalf("error %v, want ErrCleartextWithoutTLS", err)
	}
}
