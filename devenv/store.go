package devenv

import (
	"context"
	"path/filepath"

	"github.com/shiftkey/shiftkey/sqlite"
)

// Dev's data dir: the store, its key, the gateway key, the CA key and
// dev.env, all 0600, in a directory closed to others.
const (
	StoreName    = "shiftkey.db"
	StoreKeyName = "store.key"
)

// OpenStore opens dev's store in dir, sealing secrets under store.key,
// which the first start generates; tools (create false) never make a key.
func OpenStore(ctx context.Context, dir string, create bool) (*sqlite.DB, error) {
	return sqlite.OpenKeyFile(ctx, filepath.Join(dir, StoreName), filepath.Join(dir, StoreKeyName), create)
}
