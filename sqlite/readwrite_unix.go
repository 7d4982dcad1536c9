//go:build unix

package sqlite

import (
	"io/fs"

	"golang.org/x/sys/unix"
)

// readWrite fails as opening the file at path to read and write would,
// without opening it (prepareFiles says why).
func readWrite(path string) error {
	if err := unix.Access(path, unix.R_OK|unix.W_OK); err != nil {
		return &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return nil
}
