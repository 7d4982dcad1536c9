//go:build unix

package main

import "syscall"

// restrictUmask makes every file and directory shiftkey (and the
// PostgreSQL it starts) creates closed to group and others, whatever mode
// the code asks for: the data dir holds keys and secrets.
func restrictUmask() { syscall.Umask(0o077) }
