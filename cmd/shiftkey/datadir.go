package main

import (
	"context"
	"path/filepath"

	"github.com/shiftkey/shiftkey/sqlite"
)

// Dev's data dir: the store, its key, the gateway key, the CA key and
// dev.env, all 0600, in a directory closed to others.
const (
	devStoreName    = "shiftkey.db"
	devStoreKeyName = "store.key"
)

// openDevStore opens dev's store, sealing secrets under store.key, which
// the first start generates; tools (create false) never make a key.
func openDevStore(ctx context.Context, dir string, create bool) (*sqlite.DB, error) {
	return sqlite.OpenKeyFile(ctx, filepath.Join(dir, devStoreName), filepath.Join(dir, devStoreKeyName), create)
}
