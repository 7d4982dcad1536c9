package scram

import "golang.org/x/sys/cpu"

// blockSHA runs SHA-256's compression function on state h and block p,
// with the Armv8 SHA-256 instructions (SHA256H, SHA256H2, SHA256SU0/1).
//
//go:noescape
func blockSHA(h *[8]uint32, p *[64]byte)

// hiLoop1 runs n PBKDF2-HMAC-SHA-256 iterations on s: u = HMAC(u)
// from the key's inner and outer states, t ^= u.
//
//go:noescape
func hiLoop1(s *hiState, n int)

// hiLoop2 is hiLoop1 on a and b at once, four rounds of one then four of
// the other, so that each chain of SHA256H/SHA256H2 runs while the other waits.
//
//go:noescape
func hiLoop2(a, b *hiState, n int)

var haveSHA = cpu.ARM64.HasSHA2

// registerOrder is state h as the instructions hold it: words A-D, then
// E-H, each in lane order.
func registerOrder(h [8]uint32) [8]uint32 { return h }
