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
	if err := checkOwner(dir); err != nil {
		return err
	}
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

// DefaultHomeHelp says where DefaultHome is, for flag help.
func DefaultHomeHelp() string {
	if os.Geteuid() == 0 {
		return "/var/lib/shiftkey"
	}
	return "$XDG_STATE_HOME/shiftkey or ~/.local/state/shiftkey"
}

// DefaultHome is shiftkey's state directory: for root /var/lib/shiftkey (the
// postgres OS user must be able to reach the database files, and /root is
// closed to it); otherwise the XDG state directory.
func DefaultHome() (string, error) {
	if os.Geteuid() == 0 {
		return "/var/lib/shiftkey", nil
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "shiftkey"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no home directory for the default data dir, pass --data-dir: %w", err)
	}
	return filepath.Join(home, ".local", "state", "shiftkey"), nil
}
