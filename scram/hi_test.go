package scram

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// hi is PBKDF2-HMAC-SHA-256 as crypto/pbkdf2 computes it: for passwords
// shorter and longer than a block, salts of any length, and iteration
// counts around the ones used.
func TestHiIsPBKDF2(t *testing.T) {
	if !haveSHA {
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

// The two-derivation loop computes what the one-derivation loop does, for
// each of its two states.
func TestHiLoop2IsTwoHiLoops(t *testing.T) {
	if !haveSHA {
		t.Skip("no SHA extensions on this CPU: the assembly loops are not used here")
	}
	r := rand.New(rand.NewPCG(3, 4))
	random := func() hiState {
		var s hiState
		for _, w := range []*[8]uint32{&s.in, &s.out, &s.u, &s.t} {
			for i := range w {
				w[i] = r.Uint32()
			}
		}
		return s
	}
	for _, n := range []int{0, 1, 2, 63, 64, 1000} {
		a, b := random(), random()
		wantA, wantB := a, b
		hiLoop1(&wantA, n)
		hiLoop1(&wantB, n)
		hiLoop2(&a, &b, n)
		if a != wantA || b != wantB {
			t.Fatalf("n=%d: two at once\n%x\n%x\nwant\n%x\n%x", n, a, b, wantA, wantB)
		}
	}
}

// Derivations wanted at once run in pairs, and each caller still gets its
// own PBKDF2: with one iteration count pairs end together; with different
// ones they form part-way through, a runner leaves while its partner goes
// on, and a waiter is handed its derivation back. Every caller has its own password and salt,
// so a result handed to the wrong caller (one login's verifier under
// another's password) fails here too.
func TestConcurrentHiPairsAndIsPBKDF2(t *testing.T) {
	if !haveSHA {
		t.Skip("no SHA extensions on this CPU: hi is crypto/pbkdf2 itself here")
	}
	// On one P a derivation runs to its end before another goroutine
	// can ask for one (the server runs one P more than the CPUs).
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0))))
	pairs.mu.Lock()
	before := pairs.adopted
	pairs.mu.Unlock()
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := range 16 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 5))
			for range 20 {
				pw := make([]byte, 1+r.IntN(70))
				for i := range pw {
					pw[i] = byte(r.Uint32())
				}
				salt := []byte{byte(g), 1, 2, 3}
				iter := 2 + r.IntN(3000)
				if g%2 == 0 {
					// Issues all use one count: pairs that start
					// together end in the same chunk.
					iter = 1000
				}
				want, _ := pbkdf2.Key(sha256.New, string(pw), salt, iter, sha256.Size)
				if got := hi(string(pw), salt, iter); string(got[:]) != string(want) {
					errs <- fmt.Sprintf("hi(%x, %x, %d) = %x, want %x", pw, salt, iter, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	pairs.mu.Lock()
	defer pairs.mu.Unlock()
	if pairs.adopted == before {
		t.Errorf("no derivation ran in a pair with 16 goroutines deriving at once")
	}
	if pairs.singles != 0 || len(pairs.waiting) != 0 {
		t.Errorf("after every derivation: %d single runners and %d waiting, want none", pairs.singles, len(pairs.waiting))
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

// BenchmarkHi4096Pairs has two derivations per P wanted at once, as an
// issue burst has: pairs run on one core in about the time of one.
func BenchmarkHi4096Pairs(b *testing.B) {
	salt := []byte("0123456789abcdef")
	b.SetParallelism(2)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			hi("an issued password of forty-eight characters...", salt, 4096)
		}
	})
}

// BenchmarkHiLoops times the assembly loops alone, per derivation of 4096
// iterations: hiLoop2's ns/op against hiLoop1's is what pairing saves on
// this CPU, without the scheduler. It varies by CPU: where the SHA unit
// takes a new round before the last one's result, two derivations fill
// its waits (about 2× on the host where pairs were measured first); where
// it does not, less (1.27× on 2026-12-07's host).
func BenchmarkHiLoops(b *testing.B) {
	if !haveSHA {
		b.Skip("no SHA instructions: hi uses crypto/pbkdf2")
	}
	var s, t hiState
	b.Run("one", func(b *testing.B) {
		for b.Loop() {
			hiLoop1(&s, 4096)
		}
	})
	b.Run("pair-per-derivation", func(b *testing.B) {
		for b.Loop() {
			hiLoop2(&s, &t, 4096)
		}
		// Two derivations per loop: report the time of one.
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/derivation")
	})
}
