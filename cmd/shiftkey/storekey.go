package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/shiftkey/shiftkey/cmd/shiftkey/config"
	"github.com/shiftkey/shiftkey/sqlite"
)

// openServeStore opens serve's store with its key.
func openServeStore(ctx context.Context, c config.StoreConfig, logger *slog.Logger) (*sqlite.DB, error) {
	key, file, err := c.Key(true, logger)
	if err != nil {
		return nil, err
	}
	db, err := sqlite.Open(ctx, c.SQLite, sqlite.WithKey(key, file))
	if err != nil && file != "" && !errors.Is(err, sqlite.ErrKeyRequired) {
		return nil, fmt.Errorf("%w (store key %s from %s)", err, key.ID(), file)
	}
	return db, err
}
