// Package atomicfile writes a file so that a reader, or the next start
// after a crash, finds the old content or the new, never part of it: the
// bytes go to a fresh file beside the destination, synced, then renamed
// over it (or linked, by Create), and the directory is synced. A symbolic
// link at the destination is replaced, never written through.
package atomicfile

import (
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// Option changes how a file is written.
type Option func(*options)

type options struct {
	chown    bool
	uid, gid int
}

// Owner makes the file uid:gid's, through its descriptor before it is put
// in place: root writing into a directory another user controls.
func Owner(uid, gid int) Option {
	return func(o *options) { o.chown, o.uid, o.gid = true, uid, gid }
}

// Write puts data at path with mode perm (exactly: neither the umask's
// nor the old file's), replacing whatever is there.
func Write(path string, data []byte, perm fs.FileMode, opts ...Option) error {
	return put(path, data, perm, os.Rename, opts)
}

// Create is Write for a path that must not exist: the file is linked into
// place, so an existing file or link is an fs.ErrExist error, unchanged.
func Create(path string, data []byte, perm fs.FileMode, opts ...Option) error {
	return put(path, data, perm, os.Link, opts)
}

func put(path string, data []byte, perm fs.FileMode, place func(tmp, path string) error, opts []Option) error {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	tmp, err := writeTemp(path, data, perm, o)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // after a Link, the temporary name; after a Rename, nothing
	if err := place(tmp, path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// writeTemp writes data, synced, to a new file beside path (same file
// system, so that the rename is atomic) and returns its name. The file is
// created exclusively and changed through its descriptor only.
func writeTemp(path string, data []byte, perm fs.FileMode, o options) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return "", err
	}
	err = f.Chmod(perm)
	if err == nil && o.chown {
		err = f.Chown(o.uid, o.gid)
	}
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// syncDir makes the new name durable: without it a crash may forget the
// rename although the file's bytes were synced.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" { // directories cannot be opened for sync
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
