package pgserver

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
)

// MakeHome creates dir (or closes an existing one) to hold servers' data
// directories beside private files: 0700. Running as root, PostgreSQL
// runs as the postgres OS user, which must pass through dir to its own
// data directory: dir is then 0710 with the postgres group (passage, no
// listing), and the parents this creates stay 0755 despite the umask.
func MakeHome(dir string) error {
	mode, gid := os.FileMode(0o700), -1
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return fmt.Errorf("running as root, PostgreSQL must run as the postgres OS user, which does not exist: %w", err)
		}
		if gid, err = strconv.Atoi(u.Gid); err != nil {
			return err
		}
		mode = 0o710
		if err := mkdirAllTraversable(filepath.Dir(dir)); err != nil {
			return err
		}
	}
	return makeDir(dir, mode, -1, gid)
}

// makeDir creates dir (and missing parents) with mode, also under a
// restrictive umask, owned by uid and gid (-1: left as they are).
func makeDir(dir string, mode os.FileMode, uid, gid int) error {
	if err := os.MkdirAll(dir, mode); err != nil {
		return err
	}
	if err := os.Chmod(dir, mode); err != nil {
		return err
	}
	if uid >= 0 || gid >= 0 {
		return os.Chown(dir, uid, gid)
	}
	return nil
}
