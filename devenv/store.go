package devenv

import (
	"context"
	"fmt"
	"os"
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
// which the first start generates. Tools (create false) never make a key,
// nor a store: a data dir without one is an error, not an empty store
// that answers "not found" to everything.
func OpenStore(ctx context.Context, dir string, create bool) (*sqlite.DB, error) {
	path := filepath.Join(dir, StoreName)
	if !create {
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("no store at %s (is it shiftkey dev's data dir?): %w", path, err)
		}
	}
	return sqlite.OpenKeyFile(ctx, path, filepath.Join(dir, StoreKeyName), create)
}
