package scram

// blockSHANI runs SHA-256's compression function on state h and block p,
// with the CPU's SHA extensions (SHA256RNDS2, SHA256MSG1/2).
//
//go:noescape
func blockSHANI(h *[8]uint32, p *[64]byte)

// hiLoopSHANI runs n PBKDF2-HMAC-SHA-256 iterations on u with the key's
// inner and outer states (after their key blocks), xoring each new u into
// t; all are SHA-256 words (big-endian in bytes).
//
//go:noescape
func hiLoopSHANI(inner, outer, u, t *[8]uint32, n int)

// cpuHasSHANI reports the SHA extensions and the SSSE3 and SSE4.1
// instructions blockSHANI also uses.
func cpuHasSHANI() bool

var haveSHANI = cpuHasSHANI()
