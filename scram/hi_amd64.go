package scram

// blockSHANI runs SHA-256's compression function on state h and block p,
// with the CPU's SHA extensions (SHA256RNDS2, SHA256MSG1/2).
//
//go:noescape
func blockSHANI(h *[8]uint32, p *[64]byte)

// hiLoopSHANI runs n PBKDF2-HMAC-SHA-256 iterations on s: u = HMAC(u)
// from the key's inner and outer states, t ^= u.
//
//go:noescape
func hiLoopSHANI(s *hiState, n int)

// hiLoop2SHANI is hiLoopSHANI on a and b at once, in about the time
// hiLoopSHANI takes for one: one derivation's compressions each wait for
// the last one, and two fill those waits.
//
//go:noescape
func hiLoop2SHANI(a, b *hiState, n int)

// cpuHasSHANI reports the SHA extensions and the SSSE3 and SSE4.1
// instructions blockSHANI also uses.
func cpuHasSHANI() bool

var haveSHANI = cpuHasSHANI()
