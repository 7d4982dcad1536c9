//go:build !amd64 && !arm64

package scram

const haveSHA = false

// Unreachable: hi takes crypto/pbkdf2's path when haveSHA is false.
func blockSHA(h *[8]uint32, p *[64]byte) { panic("scram: no SHA instructions") }

func hiLoop1(s *hiState, n int) { panic("scram: no SHA instructions") }

func hiLoop2(a, b *hiState, n int) { panic("scram: no SHA instructions") }

func registerOrder(h [8]uint32) [8]uint32 { return h }
