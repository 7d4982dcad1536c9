package main

import (
	"context"
	"os"
	"path/filepath"

	"github.com/shiftkey/shiftkey/secretbox"
	"github.com/shiftkey/shiftkey/sqlite"
)

// Dev's data dir: the store, its key, the gateway key, the CA key and
// dev.env, all 0600, in a directory closed to others.
const (
	devStoreName    = "shiftkey.db"
	devStoreKeyName = "store.key"
)

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
