//go:build linux

package sqlite

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// An fsync can return 0 for a commit the disk never gets. ext4 (and any
// jbd2 file system) that fails (an I/O error, errors=remount-ro) aborts
// its journal and drops the running transaction, with the blocks and
// size the WAL's last frames were appended into; an fsync whose
// transaction is already dropped when it asks finds nothing to wait for
// and returns 0 (jbd2_complete_transaction), and the file system marks
// itself read-only only milliseconds later. The commit is then gone at
// the next mount. What the abort leaves visible at once is that no
// journal handle can start: fallocate of a byte the WAL already has
// starts one (and allocates nothing), so it fails with EROFS or EIO from
// the abort on.

// fsProbe is a descriptor of the WAL kept to ask that question.
type fsProbe struct {
	f *os.File
}

// openFSProbe opens the probe on file (the WAL), nil where the file
// system has no fallocate (the question cannot be asked there).
func openFSProbe(file string) *fsProbe {
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		return nil
	}
	p := &fsProbe{f: f}
	if err := p.failed(); err != nil {
		f.Close()
		return nil
	}
	return p
}

// failed is the error of a journal handle on the file system now: nil
// while it accepts writes.
func (p *fsProbe) failed() error {
	for {
		err := unix.Fallocate(int(p.f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, 1)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

func (p *fsProbe) close() { p.f.Close() }
