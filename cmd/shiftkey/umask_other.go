//go:build !unix

package main

// restrictUmask: no umask outside unix; files are created with explicit
// modes.
func restrictUmask() {}
