//go:build !amd64

package scram

const haveSHANI = false

func blockSHANI(h *[8]uint32, p *[64]byte) { panic("scram: no SHA extensions") }
