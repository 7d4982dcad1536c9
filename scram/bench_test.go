package scram

import (
	"crypto/sha256"
	"testing"
)

// BenchmarkNewKeys is the verifier an issue derives, at the default
// iteration count: the floor of an issue's CPU at that count.
func BenchmarkNewKeys(b *testing.B) {
	salt := []byte("0123456789abcdef")
	for b.Loop() {
		NewKeys("a-36-byte-password-as-issued-0123456789", salt, IssuedIterations)
	}
}

// BenchmarkSHA256Blocks is the same number of bare SHA-256 blocks (two per
// PBKDF2 iteration): what any PBKDF2 of this count costs at least here.
func BenchmarkSHA256Blocks(b *testing.B) {
	var sum [32]byte
	for b.Loop() {
		for range 2 * IssuedIterations {
			sum = sha256.Sum256(sum[:])
		}
	}
}
