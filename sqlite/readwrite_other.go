//go:build !unix

package sqlite

import "os"

// readWrite fails as opening the file at path to read and write would
// (prepareFiles). Where POSIX locks do not exist, opening it is harmless.
func readWrite(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	return f.Close()
}
