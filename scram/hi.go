package scram

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"sync/atomic"
)

// hi is RFC 5802's Hi(password, salt, i): PBKDF2-HMAC-SHA-256 with one
// block of output, SCRAM-SHA-256's SaltedPassword.
//
// Each iteration is two SHA-256 compressions from the HMAC key's fixed
// inner and outer states. crypto/pbkdf2 gets there through hash.Hash,
// which restores a saved state and pads and finalises the digest at every
// step; where the CPU has SHA-256 instructions (amd64's SHA extensions,
// arm64's SHA2), hi runs the compressions alone (blockSHA, hiLoop1), at
// about twice the speed on amd64, and runs two derivations on one core
// when two are wanted at once (pairs, hiLoop2): up to twice that again,
// by how much the CPU's SHA unit overlaps rounds (BenchmarkHiLoops).
// That is most of an issue's CPU at the default 4096 iterations. (The
// arm64 loops are checked under qemu-aarch64-static; their speed on arm64
// hardware has not been measured.)
func hi(password string, salt []byte, iterations int) [sha256.Size]byte {
	var out [sha256.Size]byte
	if !haveSHA || iterations < 2 {
		k, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
		if err != nil {
			// Only reachable with FIPS-140 restrictions on key length; the
			// inputs here are always acceptable.
			panic(err)
		}
		copy(out[:], k)
		return out
	}
	key := []byte(password)
	if len(key) > sha256.BlockSize {
		s := sha256.Sum256(key)
		key = s[:]
	}
	var ipad, opad [sha256.BlockSize]byte
	copy(ipad[:], key)
	copy(opad[:], key)
	for i := range ipad {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	inner, outer := sha256IV, sha256IV
	blockSHA(&inner, &ipad)
	blockSHA(&outer, &opad)

	// U1 = HMAC(password, salt || INT(1)); the salt has any length. Every
	// later U is the HMAC of the 32-byte U before it: one block in each
	// half, run by the assembly loops.
	m := hmac.New(sha256.New, []byte(password))
	m.Write(salt)
	m.Write([]byte{0, 0, 0, 1})
	m.Sum(out[:0])
	j := &hiJob{n: iterations - 1}
	j.s.in = registerOrder(inner)
	j.s.out = registerOrder(outer)
	for i := range j.s.u {
		j.s.u[i] = binary.BigEndian.Uint32(out[4*i:])
	}
	j.s.t = j.s.u
	pairs.derive(j)
	for i, w := range j.s.t {
		binary.BigEndian.PutUint32(out[4*i:], w)
	}
	return out
}

// sha256K are SHA-256's round constants, which the assembly loops read.
var sha256K = [64]uint32{
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

// sha256IV is SHA-256's initial state.
var sha256IV = [8]uint32{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}

// hiState is one derivation's iterations in progress, laid out for the
// assembly loops.
type hiState struct {
	in, out [8]uint32 // the key's inner and outer states, in registerOrder (hi_<arch>.go)
	u, t    [8]uint32 // the last U and the xor of all, words A-H
}

// pairChunk is how many iterations a runner does between looks for a
// derivation to pair with (about 3 µs alone).
const pairChunk = 64

// hiJob is a derivation as pairs passes it between goroutines.
type hiJob struct {
	s    hiState
	n    int       // iterations left
	wake chan bool // to a waiting job's goroutine: true, done; false, run the rest yourself
}

// pairs runs two derivations wanted at once on one core.
//
// A goroutine deriving is a runner. Between chunks of its iterations, a
// runner with one derivation adopts a waiting one and runs both together.
// A derivation arriving while some runner is alone and not yet promised
// to an earlier waiter waits to be adopted (within one chunk); otherwise
// its own goroutine runs it. A runner returns as soon as its own
// derivation is done and hands an adopted one that is not back to that
// one's goroutine, so no caller waits on another's longer work.
var pairs pairing

type pairing struct {
	mu      sync.Mutex
	waiting []*hiJob // oldest first; never more than singles
	singles int      // runners with one derivation, which will adopt a waiting one
	adopted int      // derivations adopted so far (tests: pairs formed)
	// nwait is len(waiting), for runners to look at between chunks
	// without taking mu.
	nwait atomic.Int32
}

func (p *pairing) derive(j *hiJob) {
	p.mu.Lock()
	// Waiting costs about nothing: two derivations take the time of one,
	// and an adopter is a chunk away. It frees a core even where one is
	// idle (an issue's other work, the gateway's logins).
	if p.singles > len(p.waiting) {
		j.wake = make(chan bool, 1)
		p.waiting = append(p.waiting, j)
		p.nwait.Store(int32(len(p.waiting)))
		p.mu.Unlock()
		if <-j.wake {
			return
		}
		// Handed back: whoever did counted this goroutine as a single.
	} else {
		p.singles++
		p.mu.Unlock()
	}
	p.run(j)
}

// run is a runner counted in singles, deriving j and whatever it adopts.
func (p *pairing) run(j *hiJob) {
	var other *hiJob // adopted; while set, this runner is not a single
	for {
		if other == nil && p.nwait.Load() > 0 {
			p.mu.Lock()
			if len(p.waiting) > 0 {
				other = p.pop()
				p.singles--
				p.adopted++
			}
			p.mu.Unlock()
		}
		if other == nil {
			k := min(j.n, pairChunk)
			hiLoop1(&j.s, k)
			j.n -= k
		} else {
			k := min(j.n, other.n, pairChunk)
			hiLoop2(&j.s, &other.s, k)
			j.n -= k
			other.n -= k
			if other.n == 0 {
				other.wake <- true
				other = nil
				p.mu.Lock()
				p.singles++
				p.mu.Unlock()
			}
		}
		if j.n > 0 {
			continue
		}
		var resume *hiJob
		p.mu.Lock()
		if other != nil {
			// This runner leaves; other's goroutine runs on alone.
			resume = other
			p.singles++
		} else {
			p.singles--
			if len(p.waiting) > p.singles {
				// A waiter counted on this runner: it runs itself.
				resume = p.pop()
				p.singles++
			}
		}
		p.mu.Unlock()
		if resume != nil {
			resume.wake <- false
		}
		return
	}
}

// pop takes the oldest waiting job; p.mu is held.
func (p *pairing) pop() *hiJob {
	j := p.waiting[0]
	p.waiting[0] = nil
	p.waiting = p.waiting[1:]
	p.nwait.Store(int32(len(p.waiting)))
	return j
}

// PairsDerivations reports whether derivations wanted at once run two on a
// core (the CPU has SHA-256 instructions): then twice as many issues as
// cores can be deriving keys without queueing for a core.
func PairsDerivations() bool { return haveSHA }
