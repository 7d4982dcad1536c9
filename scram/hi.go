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
// step; where the CPU has the SHA extensions, hi runs the compressions
// alone (blockSHANI), at about twice the speed, and runs two derivations
// on one core when two are wanted at once (pairs), at about twice that
// again. That is most of an issue's CPU at the default 4096 iterations.
func hi(password string, salt []byte, iterations int) [sha256.Size]byte {
	var out [sha256.Size]byte
	if !haveSHANI || iterations < 2 {
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
	blockSHANI(&inner, &ipad)
	blockSHANI(&outer, &opad)

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

// sha256IV is SHA-256's initial state.
var sha256IV = [8]uint32{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}

// hiState is one derivation's iterations in progress, laid out for the
// assembly loops.
type hiState struct {
	in, out [8]uint32 // the key's inner and outer states, in registerOrder
	u, t    [8]uint32 // the last U and the xor of all, words A-H
}

// registerOrder is state h (words A-H) as the SHA extensions hold it: the
// register ABEF, then CDGH, each with its first word in the highest lane.
func registerOrder(h [8]uint32) [8]uint32 {
	return [8]uint32{h[5], h[4], h[1], h[0], h[7], h[6], h[3], h[2]}
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
	nwait   atomic.Int32
}

// pairedIterations counts the iterations run two at a time, for tests.
var pairedIterations atomic.Int64

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
			}
			p.mu.Unlock()
		}
		if other == nil {
			k := min(j.n, pairChunk)
			hiLoopSHANI(&j.s, k)
			j.n -= k
		} else {
			k := min(j.n, other.n, pairChunk)
			hiLoop2SHANI(&j.s, &other.s, k)
			pairedIterations.Add(int64(k))
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
// core (the CPU has the SHA extensions): then twice as many issues as
// cores can be deriving keys without queueing for a core.
func PairsDerivations() bool { return haveSHANI }
