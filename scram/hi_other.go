//go:build !amd64

package scram

const haveSHANI = false

// Unreachable: hi takes crypto/pbkdf2's path when haveSHANI is false.
func blockSHANI(h *[8]uint32, p *[64]byte) { panic("scram: no SHA extensions") }

func hiLoopSHANI(s *hiState, n int) { panic("scram: no SHA extensions") }

func hiLoop2SHANI(a, b *hiState, n int) { panic("scram: no SHA extensions") }
