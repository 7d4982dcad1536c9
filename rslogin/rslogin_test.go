package rslogin

import (
	"encoding/hex"
	"testing"
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
