package server

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// LockedError is a lock file (LockFile) another process holds.
type LockedError struct {
	Holder string // "process PID", or "another process"
}

func (e *LockedError) Error() string { return "locked by " + e.Holder }

// StoreLockPath is the lock file of the SQLite store at path: beside the
// file path really names, so that every path to one store (a symbolic
// link to it, a linked directory, "..") names one lock.
func StoreLockPath(path string) (string, error) {
	real, err := realPath(path, 0)
	if err != nil {
		return "", err
	}
	return real + ".lock", nil
}

// realPath resolves the links of path. A store not created yet is
// resolved through its directory; a link to one not created yet, through
// the link's target, which SQLite creates.
func realPath(path string, depth int) (string, error) {
	real, err := filepath.EvalSymlinks(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return real, err
	}
	// The directory first: a relative link target is taken from where the
	// link really is, as the kernel does.
	dir, derr := filepath.EvalSymlinks(filepath.Dir(path))
	if derr != nil {
		return "", derr
	}
	fi, lerr := os.Lstat(path)
	if lerr != nil { // no file yet
		return filepath.Join(dir, filepath.Base(path)), nil
	}
	if fi.Mode()&fs.ModeSymlink == 0 || depth >= 40 {
		return "", err
	}
	target, err := os.Readlink(path)
	if err != nil {
		return "", err
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(dir, target)
	}
	return realPath(target, depth+1)
}
