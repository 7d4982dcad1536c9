//go:build unix

package pgserver

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// oNoFollow makes an open fail on a symbolic link.
const oNoFollow = syscall.O_NOFOLLOW

// checkOwner refuses an existing dir another user owns, as PostgreSQL
// refuses a data directory of the wrong owner: whatever mode shiftkey
// gives it (root can chmod any), its owner may read, replace or plant
// files there (a dev.env.tmp of their own that the secret keys are then
// written into). A missing dir passes.
func checkOwner(dir string) error {
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return nil
	}
	if uid := os.Geteuid(); int(st.Uid) != uid {
		return fmt.Errorf("data dir %s is owned by uid %d, not by this user (uid %d): another user could read or replace what shiftkey keeps there; use a directory of your own", dir, st.Uid, uid)
	}
	return nil
}

// processExists says whether process pid exists (signal 0). EPERM: it
// does, as another user's.
func processExists(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
