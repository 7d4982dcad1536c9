package scram

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/binary"
)

// hi is RFC 5802's Hi(password, salt, i): PBKDF2-HMAC-SHA-256 with one
// block of output, SCRAM-SHA-256's SaltedPassword.
//
// Each iteration is two SHA-256 compressions from the HMAC key's fixed
// inner and outer states. crypto/pbkdf2 gets there through hash.Hash,
// which restores a saved state and pads and finalises the digest at every
// step; where the CPU has the SHA extensions, hi runs the compressions
// alone (blockSHANI), at about twice the speed. That is most of an issue's
// CPU at the default 4096 iterations.
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
	// half, run by hiLoopSHANI.
	m := hmac.New(sha256.New, []byte(password))
	m.Write(salt)
	m.Write([]byte{0, 0, 0, 1})
	m.Sum(out[:0])
	var u, t [8]uint32
	for i := range u {
		u[i] = binary.BigEndian.Uint32(out[4*i:])
	}
	t = u
	hiLoopSHANI(&inner, &outer, &u, &t, iterations-1)
	for i, w := range t {
		binary.BigEndian.PutUint32(out[4*i:], w)
	}
	return out
}

// sha256IV is SHA-256's initial state.
var sha256IV = [8]uint32{0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}
