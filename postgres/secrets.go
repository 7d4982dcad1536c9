package postgres

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey/secretbox"
)

// Secrets at rest, as in the SQLite store: IAM secret keys, STS session
// secrets and credentials' Redshift verifiers are sealed with AES-256-GCM (package secretbox) under the store
// key, bound to their row; session tokens are kept as SHA-256 hashes. The
// secret_keys table names the key new values are sealed under; every
// replica must be given that key (store.secret_key_file or
// SHIFTKEY_STORE_KEY).

// Option configures Open.
type Option func(*options)

type options struct {
	key      *secretbox.Key
	keyFile  string
	lease    time.Duration
	maxConns int32
	local    func() time.Time // this machine's clock (time.Now)
	asIs     bool             // WithoutMigrating
}

// WithKey seals secrets under key; file is where the key lives ("" when it
// came from the environment), recorded so that an operator can tell which
// key a store needs. Without WithKey (tests, tools) secrets are written in
// the clear, and a store that holds sealed secrets is refused.
func WithKey(key *secretbox.Key, file string) Option {
	return func(o *options) { o.key, o.keyFile = key, file }
}

// WithGrantLease sets how long a session grant outlives its owner's last
// renewal (DefaultGrantLease).
func WithGrantLease(d time.Duration) Option {
	return func(o *options) { o.lease = d }
}

// WithMaxConns bounds the connection pool (otherwise pool_max_conns in
// the URL, else DefaultMaxConns or the number of CPUs if larger).
func WithMaxConns(n int32) Option {
	return func(o *options) { o.maxConns = n }
}

// WithoutMigrating opens the store as its replicas left it, for a tool
// run beside them: a store lacking one of this version's migrations is
// refused (ErrNotMigrated), never migrated, since a newer tool would
// otherwise upgrade the schema under replicas of an older version.
func WithoutMigrating() Option {
	return func(o *options) { o.asIs = true }
}

// ErrNotMigrated is returned by Open WithoutMigrating when the store lacks
// migrations of this version.
var ErrNotMigrated = errors.New("the store is not migrated to this shiftkey's schema")

// ErrKeyRequired is returned by Open when the store holds sealed secrets
// and no key was given.
var ErrKeyRequired = errors.New("the store holds encrypted secrets: open it with its store key (store.secret_key_file or SHIFTKEY_STORE_KEY)")

// Each sealed value is bound to its table, column and row (the same
// Each sealed value is bound to its table, column and row.
func accessKeyAAD(id string) []byte { return secretbox.AccessKeySecret.AAD(id) }
func sessionAAD(id string) []byte   { return secretbox.SessionSecret.AAD(id) }

// openDigests returns a credential's Redshift verifiers, sealed together
// with (*secretbox.Key).SealPair (nil when empty).
func (d *DB) openDigests(ctx context.Context, q querier, id, stored string) (sha, md5 []byte, err error) {
	return secretbox.OpenPair(func(kid string) (*secretbox.Key, error) { return d.key(ctx, q, kid) }, secretbox.CredentialDigests, id, stored)
}

// key returns the key with id: held, or read from the file the store
// records for it.
func (d *DB) key(ctx context.Context, q querier, id string) (*secretbox.Key, error) {
	return d.keys.Resolve(id, func(id string) (string, error) {
		if d.beforeKeyFile != nil {
			d.beforeKeyFile()
		}
		var file string
		err := q.QueryRow(ctx, `SELECT file FROM secret_keys WHERE id = $1`, id).Scan(&file)
		if errors.Is(err, pgx.ErrNoRows) {
			return "", secretbox.ErrUnknownKey
		}
		return file, err
	})
}

// SealingKey is the id of the store key new secrets are sealed under
// and the file the store records for it ("" in a store without one):
// serve's reload compares its key file with it.
func (d *DB) SealingKey(ctx context.Context) (id, file string, err error) {
	err = d.pool.QueryRow(ctx, `SELECT id, file FROM secret_keys WHERE state = 'current'`).Scan(&id, &file)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", nil
	}
	return id, file, err
}

// seal returns what to store of secret: sealed under the current key, or
// in the clear (sealed = false) in a store without a key.
func (d *DB) seal(ctx context.Context, tx pgx.Tx, secret string, aad []byte) (string, bool, error) {
	// The seal lock shared, as the group writer's batches take it: a
	// rotation (RotateKey) takes it exclusively before anything else, so it
	// is over and the key read next is the one it made current, or it waits
	// for this transaction and reseals what this one seals. (The current
	// key's row read FOR SHARE instead waited for a rotation only to find
	// the row gone; read again, a second rotation could hold the new row,
	// and that read found none either: the secret went in the clear.)
	if _, err := tx.Exec(ctx, lockSeal, sealLock); err != nil {
		return "", false, err
	}
	var id string
	err := tx.QueryRow(ctx, `SELECT id FROM secret_keys WHERE state = 'current'`).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) && d.opts.key != nil {
		// Not after a rotation (the lock): never in the clear with a key.
		return "", false, errors.New("postgres store: the store records no current key; nothing sealed")
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return secret, false, nil
	}
	if err != nil {
		return "", false, err
	}
	k, err := d.key(ctx, tx, id)
	if err != nil {
		return "", false, err
	}
	v, err := k.Seal([]byte(secret), aad)
	return v, true, err
}

// unseal returns the secret a stored value holds.
func (d *DB) unseal(ctx context.Context, stored string, sealed bool, aad []byte) (string, error) {
	if !sealed {
		return stored, nil
	}
	b, err := secretbox.OpenWith(func(id string) (*secretbox.Key, error) { return d.key(ctx, d.pool, id) }, stored, aad)
	return string(b), err
}

// initSecrets checks the store against the key given: the first replica
// opened with a key records it; the others must hold the same. Secrets
// written in the clear before a key was given are sealed now.
func (d *DB) initSecrets(ctx context.Context, o options) error {
	if o.key == nil {
		var n int
		if err := d.pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM secret_keys) + (SELECT count(*) FROM access_keys WHERE sealed)
			+ (SELECT count(*) FROM sessions WHERE sealed)`+sealedDigestCounts).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrKeyRequired
		}
		return nil
	}
	d.keys.Add(o.key)
	return d.inTxPlain(ctx, func(tx pgx.Tx) error {
		// Replicas starting together: one records the key.
		if _, err := tx.Exec(ctx, `LOCK TABLE secret_keys IN EXCLUSIVE MODE`); err != nil {
			return err
		}
		var current, file string
		err := tx.QueryRow(ctx, `SELECT id, file FROM secret_keys WHERE state = 'current'`).Scan(&current, &file)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if _, err := tx.Exec(ctx, `INSERT INTO secret_keys (id, file, state) VALUES ($1, $2, 'current')`, o.key.ID(), o.keyFile); err != nil {
				return err
			}
		case err != nil:
			return err
		case current != o.key.ID():
			if file == "" {
				file = "the environment of the process that set it"
			}
			return fmt.Errorf("the store's secrets are sealed under store key %s (from %s), but the key given is %s", current, file, o.key.ID())
		}
		return d.sealClear(ctx, tx, o.key)
	})
}

// sealClear seals the secrets stored in the clear.
func (d *DB) sealClear(ctx context.Context, tx pgx.Tx, k *secretbox.Key) error {
	for _, t := range []struct {
		table, id string
		aad       func(string) []byte
	}{{"access_keys", "id", accessKeyAAD}, {"sessions", "access_key_id", sessionAAD}, {"shared_secrets", "name", sharedSecretAAD}} {
		type row struct{ id, secret string }
		col := "secret"
		if t.table == "shared_secrets" {
			col = "value"
		}
		rows, err := queryAll(ctx, tx, func(r pgx.Row) (v row, err error) { return v, r.Scan(&v.id, &v.secret) },
			`SELECT `+t.id+`, `+col+` FROM `+t.table+` WHERE NOT sealed FOR UPDATE`)
		if err != nil {
			return err
		}
		for _, r := range rows {
			v, err := k.Seal([]byte(r.secret), t.aad(r.id))
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE `+t.table+` SET `+col+` = $1, sealed = true WHERE `+t.id+` = $2`, v, r.id); err != nil {
				return err
			}
		}
	}
	for _, table := range digestTables {
		if _, err := d.sealDigests(ctx, tx, k, table, digestsInClear); err != nil {
			return err
		}
	}
	return nil
}

// inTxPlain runs f in a transaction without notifications.
func (d *DB) inTxPlain(ctx context.Context, f func(tx pgx.Tx) error) error {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if err := f(tx); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// CurrentKey is the id of the key new secrets are sealed under and the
// file recorded for it; "" in a store without a key.
func (d *DB) CurrentKey(ctx context.Context) (id, file string, err error) {
	err = d.pool.QueryRow(ctx, `SELECT id, file FROM secret_keys WHERE state = 'current'`).Scan(&id, &file)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", "", nil
	}
	return id, file, err
}

func sharedSecretAAD(name string) []byte { return []byte("shared_secrets.value\x00" + name) }

// GatewaySecret is the secret the gateways of every replica key their
// decoy salts with: made by the first replica to ask, sealed at rest.
func (d *DB) GatewaySecret(ctx context.Context) ([]byte, error) {
	const name = "gateway"
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	err := d.inTxPlain(ctx, func(tx pgx.Tx) error {
		value, sealed, err := d.seal(ctx, tx, base64.StdEncoding.EncodeToString(fresh), sharedSecretAAD(name))
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO shared_secrets (name, value, sealed) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, name, value, sealed)
		return err
	})
	if err != nil {
		return nil, err
	}
	var plain string
	err = secretbox.RereadAfterRotation(func() error {
		var stored string
		var sealed bool
		if err := d.pool.QueryRow(ctx, `SELECT value, sealed FROM shared_secrets WHERE name = $1`, name).Scan(&stored, &sealed); err != nil {
			return err
		}
		var err error
		plain, err = d.unseal(ctx, stored, sealed, sharedSecretAAD(name))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("gateway secret: %w", err)
	}
	return base64.StdEncoding.DecodeString(plain)
}
