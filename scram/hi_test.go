package scram

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"math/rand/v2"
	"strings"
	"testing"
)

// hi is PBKDF2-HMAC-SHA-256 as crypto/pbkdf2 computes it: for passwords
// shorter and longer than a block, salts of any length, and iteration
// counts around the ones used.
func TestHiIsPBKDF2(t *testing.T) {
	if !haveSHANI {
		t.Log("no SHA extensions on this CPU: hi is crypto/pbkdf2 itself here")
	}
	r := rand.New(rand.NewPCG(1, 2))
	bytes := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	cases := []struct {
		password string
		salt     []byte
		iter     int
	}{
		{"pencil", []byte("[m\x99h\x9d\x125\x8e\xec\xa0K\x14\x126\xfa\x81"), 4096},
		{"", []byte("salt"), 2},
		{strings.Repeat("k", 64), []byte("salt"), 3},
		{strings.Repeat("k", 65), []byte("salt"), 3},
		{strings.Repeat("long password ", 20), bytes(16), 4096},
	}
	for range 200 {
		cases = append(cases, struct {
			password string
			salt     []byte
			iter     int
		}{string(bytes(r.IntN(130))), bytes(r.IntN(80)), 1 + r.IntN(40)})
	}
	for _, c := range cases {
		want, err := pbkdf2.Key(sha256.New, c.password, c.salt, c.iter, sha256.Size)
		if err != nil {
			t.Fatal(err)
		}
		if got := hi(c.password, c.salt, c.iter); string(got[:]) != string(want) {
			t.Fatalf("hi(%q, %x, %d) = %x, want %x", c.password, c.salt, c.iter, got, want)
		}
	}
}

func BenchmarkHi4096(b *testing.B) {
	salt := []byte("0123456789abcdef")
	b.Run("hi", func(b *testing.B) {
		for b.Loop() {
			hi("an issued password of forty-eight characters...", salt, 4096)
		}
	})
	b.Run("crypto-pbkdf2", func(b *testing.B) {
		for b.Loop() {
			pbkdf2.Key(sha256.New, "an issued password of forty-eight characters...", salt, 4096, sha256.Size)
		}
	})
}

// BenchmarkHi4096Parallel runs hi on every P at once: whether the cores'
// SHA units are the machine's own or shared (SMT siblings under a hypervisor)
// shows as ns/op near BenchmarkHi4096's divided by GOMAXPROCS, or not.
func BenchmarkHi4096Parallel(b *testing.B) {
	salt := []byte("0123456789abcdef")
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			hi("an issued password of forty-eight characters...", salt, 4096)
		}
	})
}
