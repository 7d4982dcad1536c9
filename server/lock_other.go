//go:build !unix

package server

import "os"

// LockFile does not lock where flock is missing.
func LockFile(string) (*os.File, error) { return nil, nil }
