//go:build !amd64

package scram

const haveSHANI = false

func blockSHANI(h *[8]uint32, p *[64]byte) { panic("scram: no SHA extensions") }

func hiLoopSHANI(inner, outer, u, t *[8]uint32, n int) { panic("scram: no SHA extensions") }
