package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/shiftkey/shiftkey/config"
	"github.com/shiftkey/shiftkey/postgres"
	"github.com/shiftkey/shiftkey/secretbox"
	"github.com/shiftkey/shiftkey/sqlite"
)

// OpenStore opens serve's store with its key: the shared PostgreSQL store
// (store.postgres) or a SQLite file.
func OpenStore(ctx context.Context, c config.StoreConfig, logger *slog.Logger) (Store, error) {
	// A generated key file that is missing is made again below: kept
	// only if the store takes it (a new store, or one without a key).
	_, inEnv := os.LookupEnv(config.EnvStoreKey)
	generated := false
	if c.Postgres == "" && c.SecretKeyFile == "" && !inEnv {
		_, err := os.Lstat(c.DefaultKeyFile())
		generated = errors.Is(err, os.ErrNotExist)
	}
	key, file, err := c.Key(true, logger)
	if err != nil {
		return nil, err
	}
	if c.Postgres != "" {
		opts := []postgres.Option{postgres.WithKey(key, file)}
		if c.GrantLease > 0 {
			opts = append(opts, postgres.WithGrantLease(c.GrantLease))
		}
		db, err := postgres.Open(ctx, c.Postgres, opts...)
		if err != nil {
			return nil, err
		}
		return db, nil
	}
	db, err := sqlite.Open(ctx, c.SQLite, sqlite.WithKey(key, file))
	if generated && errors.Is(err, sqlite.ErrOtherKey) {
		return nil, sqlite.RefuseFreshKey(err, generated, file)
	}
	if err != nil && file != "" && !errors.Is(err, sqlite.ErrKeyRequired) {
		return nil, fmt.Errorf("%w (store key %s from %s)", err, key.ID(), file)
	}
	if err != nil {
		return nil, err
	}
	return db, nil
}

// GatewaySecret keys the gateways' decoy salts: shared through the store
// when replicas share one, else a file beside the SQLite store.
func GatewaySecret(ctx context.Context, st Store, c config.StoreConfig) ([]byte, error) {
	if shared, ok := st.(interface {
		GatewaySecret(context.Context) ([]byte, error)
	}); ok {
		return shared.GatewaySecret(ctx)
	}
	return secretbox.LoadOrCreateRaw(c.SQLite + ".gateway-key")
}
