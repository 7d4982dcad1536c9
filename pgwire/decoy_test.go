package pgwire

import (
	"testing"

	"github.com/shiftkey/shiftkey/scram"
)

// An unknown login's decoy salt carries the iteration count new logins get,
// so the count does not tell an unknown login from a new one.
func TestDecoySaltIterations(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	if n := (&Gateway{Secret: secret}).decoySalt("IAM:x").Iterations; n != scram.IssuedIterations {
		t.Fatalf("default decoy: %d iterations, want %d", n, scram.IssuedIterations)
	}
	if n := (&Gateway{Secret: secret, Iterations: 7}).decoySalt("IAM:x").Iterations; n != 7 {
		t.Fatalf("configured decoy: %d iterations, want 7", n)
	}
}
