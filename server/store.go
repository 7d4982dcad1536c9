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
	return openStore(ctx, c, logger)
}

// OpenToolStore opens serve's store for a command run beside the replicas
// (credentials, policy): a shared store is taken as they migrated it,
// never migrated (postgres.WithoutMigrating).
func OpenToolStore(ctx context.Context, c config.StoreConfig, logger *slog.Logger) (Store, error) {
	return openStore(ctx, c, logger, postgres.WithoutMigrating())
}

func openStore(ctx context.Context, c config.StoreConfig, logger *slog.Logger, pgOpts ...postgres.Option) (Store, error) {
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
		opts := append([]postgres.Option{postgres.WithKey(key, file)}, pgOpts...)
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

// SealingKey is the id of the key the store seals new secrets under and
// the file the store records for it ("" without one, or for a store that
// does not say).
func (s *Server) SealingKey(ctx context.Context) (id, file string, err error) {
	if k, ok := s.db.(interface {
		SealingKey(context.Context) (string, string, error)
	}); ok {
		return k.SealingKey(ctx)
	}
	return "", "", nil
}

// GatewaySecret keys the gateways' decoy salts: shared through the store
// when replicas share one, else a file beside the SQLite store.
func GatewaySecret(ctx context.Context, st Store, c config.StoreConfig) ([]byte, error) {
	if shared, ok := st.(interface {
		GatewaySecret(context.Context) ([]byte, error)
	}); ok {
		return shared.GatewaySecret(ctx)
	}
	return GatewayKeyFile(ctx, st, c.SQLite+".gateway-key")
}

// GatewayKeyFile is the gateway secret kept in the file at path for the
// SQLite store st (serve's <store.sqlite>.gateway-key, dev's gateway.key):
// made when missing, unless st has issued logins. Their salts are their
// own, an unknown name's derived from the secret: a new secret would
// change the latter only, and a name's salt asked before and after would
// tell whether it has credentials. A file of another length is refused
// too (secretbox.LoadOrCreateRaw).
func GatewayKeyFile(ctx context.Context, st any, path string) ([]byte, error) {
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		if s, ok := st.(interface {
			HasLoginSalts(context.Context) (bool, error)
		}); ok {
			issued, err := s.HasLoginSalts(ctx)
			if err != nil {
				return nil, err
			}
			if issued {
				return nil, fmt.Errorf("gateway key file %s is missing, and the store has issued logins: restore it from a backup; "+
					"a new one changes the decoy salts of unknown names, not the issued logins' salts, which tells one from the other "+
					"to whoever asked before (to accept that: (umask 077; head -c 32 /dev/urandom > %s))", path, path)
			}
		}
	}
	return secretbox.LoadOrCreateRaw(path)
}
