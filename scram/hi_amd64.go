package scram

// blockSHA runs SHA-256's compression function on state h and block p,
// with the CPU's SHA extensions (SHA256RNDS2, SHA256MSG1/2).
//
//go:noescape
func blockSHA(h *[8]uint32, p *[64]byte)

// hiLoop1 runs n PBKDF2-HMAC-SHA-256 iterations on s: u = HMAC(u)
// from the key's inner and outer states, t ^= u.
//
//go:noescape
func hiLoop1(s *hiState, n int)

// hiLoop2 is hiLoop1 on a and b at once, in less time than two
// hiLoop1 calls: one derivation's compressions each wait for the last
// one, and two fill those waits (down to the time of one where the SHA
// unit overlaps rounds fully; BenchmarkHiLoops).
//
//go:noescape
func hiLoop2(a, b *hiState, n int)

// cpuHasSHA reports the SHA extensions and the SSSE3 and SSE4.1
// instructions blockSHA also uses.
func cpuHasSHA() bool

var haveSHA = cpuHasSHA()

// registerOrder is state h (words A-H) as the SHA extensions hold it: the
// register ABEF, then CDGH, each with its first word in the highest lane.
func registerOrder(h [8]uint32) [8]uint32 {
	return [8]uint32{h[5], h[4], h[1], h[0], h[7], h[6], h[3], h[2]}
}
