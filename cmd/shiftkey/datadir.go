package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"github.com/shiftkey/shiftkey/secretbox"
	"github.com/shiftkey/shiftkey/sqlite"
)

// Dev's data dir: the store, its key, the gateway key, the CA key and
// dev.env, all 0600, in a directory closed to others.
const (
	devStoreName    = "shiftkey.db"
	devStoreKeyName = "store.key"
)

// makeDataDir creates dir (or closes an existing one) 0700. Running as
// root, PostgreSQL runs as the postgres OS user, which must pass through
// dir to its own data directory: dir is then 0710 with the postgres group
// (passage, no listing), and the parents this creates stay 0755 despite
// the umask.
func makeDataDir(dir string) error {
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
	if err := os.MkdirAll(dir, mode); err != nil {
		return err
	}
	if err := os.Chmod(dir, mode); err != nil {
		return err
	}
	if gid >= 0 {
		return os.Chown(dir, -1, gid)
	}
	return nil
}

// mkdirAllTraversable creates the missing directories of dir 0755; those
// that exist are left as they are.
func mkdirAllTraversable(dir string) error {
	if _, err := os.Stat(dir); err == nil || !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := mkdirAllTraversable(filepath.Dir(dir)); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return os.Chmod(dir, 0o755)
}

// openDevStore opens dev's store, sealing secrets under store.key, which
// the first start generates.
func openDevStore(ctx context.Context, dir string) (*sqlite.DB, error) {
	keyPath := filepath.Join(dir, devStoreKeyName)
	key, err := secretbox.LoadOrCreateKeyFile(keyPath)
	if err != nil {
		return nil, err
	}
	return sqlite.Open(ctx, filepath.Join(dir, devStoreName), sqlite.WithKey(key, keyPath))
}

// openExistingDevStore opens the store of a dev data dir for a tool: with
// store.key when there is one, never creating a key.
func openExistingDevStore(ctx context.Context, dir string) (*sqlite.DB, error) {
	keyPath := filepath.Join(dir, devStoreKeyName)
	var opts []sqlite.Option
	if _, err := os.Lstat(keyPath); err == nil {
		key, err := secretbox.LoadKeyFile(keyPath)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sqlite.WithKey(key, keyPath))
	}
	return sqlite.Open(ctx, filepath.Join(dir, devStoreName), opts...)
}
