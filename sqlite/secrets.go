package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/secretbox"
)

// Secrets at rest. IAM secret keys, STS session secrets and credentials'
// Redshift verifiers (code 13 and MD5 digests) are sealed with
// AES-256-GCM (package secretbox) under the store key, bound to their row;
// session tokens are kept as SHA-256 hashes. The secret_keys table records
// which key seals new values ('current') and, during a rotation, which keys
// still open old ones ('retiring'), with the file each is read from: a
// process that meets a value sealed by a key it was not given (a rotation
// run by `shiftkey store rotate-key` next to a running server) reads that
// key from its file, so readers never fail during a rotation.

// Option configures Open.
type Option func(*options)

type options struct {
	key     *secretbox.Key
	keyFile string
}

// WithKey seals secrets under key. file is where the key lives (absolute),
// or "" when it was given otherwise (the environment); it is recorded so
// that other processes find the key during a rotation.
//
// Without WithKey (tests, read-only tools) secrets are written in the
// clear, and a store that already holds sealed secrets is refused.
func WithKey(key *secretbox.Key, file string) Option {
	return func(o *options) { o.key, o.keyFile = key, file }
}

// ErrKeyRequired is returned by Open when the store holds sealed secrets
// and no key was given.
var ErrKeyRequired = errors.New("the store holds encrypted secrets: open it with its store key (serve: store.secret_key_file or SHIFTKEY_STORE_KEY; dev: store.key in the data dir)")

// ErrOtherKey is returned by Open when the store's secrets are sealed
// under a key other than the one given.
var ErrOtherKey = errors.New("the store's secrets are sealed under store key")

// querier is a *sql.DB or *sql.Tx.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// key returns the key with id: held, or read from the file the store
// records for it.
func (d *DB) key(ctx context.Context, q querier, id string) (*secretbox.Key, error) {
	return d.keys.Resolve(id, func(id string) (string, error) {
		if d.beforeKeyFile != nil {
			d.beforeKeyFile()
		}
		var file string
		err := q.QueryRowContext(ctx, `SELECT file FROM secret_keys WHERE id = ?`, id).Scan(&file)
		if errors.Is(err, sql.ErrNoRows) {
			return "", secretbox.ErrUnknownKey
		}
		if d.afterKeyFile != nil {
			d.afterKeyFile()
		}
		return file, err
	})
}

// SealingKey is the id of the store key new secrets are sealed under
// and the file the store records for it ("" in a store without one):
// serve's reload compares its key file with it.
func (d *DB) SealingKey(ctx context.Context) (id, file string, err error) {
	err = d.db.QueryRowContext(ctx, `SELECT id, file FROM secret_keys WHERE state = 'current'`).Scan(&id, &file)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", nil
	}
	return id, file, err
}

// sealingKey is the key new secrets are sealed under, nil in a store
// opened without one.
func (d *DB) sealingKey(ctx context.Context, q querier) (*secretbox.Key, error) {
	var id string
	err := q.QueryRowContext(ctx, `SELECT id FROM secret_keys WHERE state = 'current'`).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return d.key(ctx, q, id)
}

// Each sealed value is bound to its table, column and row.
func accessKeyAAD(id string) []byte { return secretbox.AccessKeySecret.AAD(id) }
func sessionAAD(id string) []byte   { return secretbox.SessionSecret.AAD(id) }

// openDigests returns a credential's Redshift verifiers, sealed together
// with (*secretbox.Key).SealPair (nil when empty).
func (d *DB) openDigests(ctx context.Context, q querier, id, stored string) (sha, md5 []byte, err error) {
	return secretbox.OpenPair(func(kid string) (*secretbox.Key, error) { return d.key(ctx, q, kid) }, secretbox.CredentialDigests, id, stored)
}

// seal returns what to store of secret: sealed under the current key, or
// in the clear (sealed = false) in a store without a key.
func (d *DB) seal(ctx context.Context, tx *checkedTx, secret string, aad []byte) (string, bool, error) {
	k, err := d.sealingKey(ctx, tx)
	if err != nil || k == nil {
		return secret, false, err
	}
	v, err := k.Seal([]byte(secret), aad)
	return v, true, err
}

// unseal returns the secret a stored value holds.
func (d *DB) unseal(ctx context.Context, stored string, sealed bool, aad []byte) (string, error) {
	if !sealed {
		return stored, nil
	}
	b, err := secretbox.OpenWith(func(id string) (*secretbox.Key, error) { return d.key(ctx, d.db, id) }, stored, aad)
	return string(b), err
}

// initSecrets checks the store against the key given and seals what an
// older store kept in the clear.
func (d *DB) initSecrets(ctx context.Context, o options) error {
	current, currentFile, retiring, err := d.keyStates(ctx)
	if err != nil {
		return err
	}
	if o.key == nil {
		var n int
		if err := d.db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM access_keys WHERE sealed = 1) + (SELECT count(*) FROM sessions WHERE sealed = 1)
			`+countEach(digestTables, "digests IS NOT NULL")).Scan(&n); err != nil {
			return err
		}
		if current != "" || n > 0 {
			return ErrKeyRequired
		}
		return d.sealLegacy(ctx)
	}
	d.keys.Add(o.key)
	switch {
	case current == "":
		_, err = d.db.ExecContext(ctx, `INSERT INTO secret_keys (id, file, state) VALUES (?, ?, 'current')`, o.key.ID(), o.keyFile)
	case current == o.key.ID():
		if o.keyFile != currentFile {
			_, err = d.db.ExecContext(ctx, `UPDATE secret_keys SET file = ? WHERE id = ?`, o.keyFile, current)
		}
	case retiring[o.key.ID()]:
		// A rotation away from the key given is unfinished: the new key
		// comes from its file until rotate-key completes.
		if _, err := d.key(ctx, d.db, current); err != nil {
			return fmt.Errorf("a store key rotation is unfinished and its new key cannot be read (run shiftkey store rotate-key again): %w", err)
		}
	default:
		where := currentFile
		if where == "" {
			where = "the environment of the process that set it"
		}
		return fmt.Errorf("%w %s (from %s), but the key given is %s: use the key in %s", ErrOtherKey, current, where, o.key.ID(), where)
	}
	if err != nil {
		return err
	}
	return d.sealLegacy(ctx)
}

// keyStates reads the secret_keys table.
func (d *DB) keyStates(ctx context.Context) (current, currentFile string, retiring map[string]bool, err error) {
	rows, err := d.db.QueryContext(ctx, `SELECT id, file, state FROM secret_keys`)
	if err != nil {
		return "", "", nil, err
	}
	defer rows.Close()
	retiring = map[string]bool{}
	for rows.Next() {
		var id, file, state string
		if err := rows.Scan(&id, &file, &state); err != nil {
			return "", "", nil, err
		}
		if state == "current" {
			current, currentFile = id, file
		} else {
			retiring[id] = true
		}
	}
	return current, currentFile, retiring, rows.Err()
}

// sealLegacy seals, in one transaction, the secrets a store from before
// sealing kept in the clear, and replaces their tokens by hashes. The old
// bytes must not linger: secure_delete zeroes freed space and a truncating
// checkpoint empties the WAL that held the old pages.
func (d *DB) sealLegacy(ctx context.Context) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	n, err := d.reseal(ctx, tx, nil, -1)
	if err != nil {
		return fmt.Errorf("seal secrets stored in the clear: %w", err)
	}
	if n == 0 {
		return nil
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	return d.checkpoint(ctx)
}

// checkpoint copies the WAL into the database and truncates it, so that
// superseded pages (old secrets) leave the disk.
func (d *DB) checkpoint(ctx context.Context) error {
	var busy, log, done int
	if err := d.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &log, &done); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// reseal rewrites up to limit (-1: all) rows not yet sealed under the
// current key: legacy rows in the clear, and, when next is the current
// key, rows sealed under another. It returns how many rows it rewrote.
func (d *DB) reseal(ctx context.Context, tx *checkedTx, next *secretbox.Key, limit int) (int, error) {
	k, err := d.sealingKey(ctx, tx)
	if err != nil {
		return 0, err
	}
	prefix := "" // only legacy rows
	if next != nil {
		prefix = secretbox.Prefix(next.ID())
	}
	cond := `sealed = 0 OR (? != '' AND substr(secret, 1, length(?)) != ?)`
	n := 0
	for _, t := range []struct {
		table string
		aad   func(string) []byte
	}{{"access_keys", accessKeyAAD}, {"sessions", sessionAAD}} {
		type row struct {
			id, secret string
			sealed     bool
		}
		var todo []row
		rows, err := tx.QueryContext(ctx, `SELECT `+idColumn(t.table)+`, secret, sealed FROM `+t.table+` WHERE `+cond+` LIMIT ?`, prefix, prefix, prefix, limit)
		if err != nil {
			return n, err
		}
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.secret, &r.sealed); err != nil {
				rows.Close()
				return n, err
			}
			todo = append(todo, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return n, err
		}
		for _, r := range todo {
			plain, err := d.unseal(ctx, r.secret, r.sealed, t.aad(r.id))
			if err != nil {
				return n, fmt.Errorf("%s %s: %w", t.table, r.id, err)
			}
			stored, sealed := plain, false
			if k != nil {
				if stored, err = k.Seal([]byte(plain), t.aad(r.id)); err != nil {
					return n, err
				}
				sealed = true
			}
			if sealed == r.sealed && stored == r.secret {
				continue
			}
			if _, err := tx.ExecContext(ctx, `UPDATE `+t.table+` SET secret = ?, sealed = ? WHERE `+idColumn(t.table)+` = ?`, stored, sealed, r.id); err != nil {
				return n, err
			}
			n++
		}
		if limit > 0 {
			if limit -= len(todo); limit <= 0 {
				limit = 0
				break
			}
		}
	}
	// Revocations keep their credential's verifiers (migration 0016):
	// sealed, resealed and counted as the credentials' are.
	for _, table := range digestTables {
		if k == nil || limit == 0 { // k: without a key the verifiers stay in the clear
			break
		}
		m, err := d.resealDigests(ctx, tx, k, table, prefix, limit)
		n += m
		if err != nil {
			return n, err
		}
		if limit > 0 {
			limit = max(limit-m, 0)
		}
	}
	// Tokens of legacy sessions: keep only their hash.
	rows, err := tx.QueryContext(ctx, `SELECT access_key_id, token FROM sessions WHERE token != ''`)
	if err != nil {
		return n, err
	}
	tokens := map[string]string{}
	for rows.Next() {
		var id, tok string
		if err := rows.Scan(&id, &tok); err != nil {
			rows.Close()
			return n, err
		}
		tokens[id] = tok
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return n, err
	}
	for id, tok := range tokens {
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET token = '', token_sha256 = ? WHERE access_key_id = ?`, shiftkey.HashSessionToken(tok), id); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// digestTables hold Redshift verifiers: the credentials, and the
// revocations that keep theirs.
var digestTables = []string{"credentials", "credential_revocations"}

// countEach is the SQL sum " + (SELECT count(*) FROM t WHERE where)" over
// tables.
func countEach(tables []string, where string) string {
	var b strings.Builder
	for _, t := range tables {
		b.WriteString(" + (SELECT count(*) FROM " + t + " WHERE " + where + ")")
	}
	return b.String()
}

// digestsToReseal selects the rows of a digestTables table whose
// verifiers are in the clear, or (when ?1 is a key's prefix) sealed under
// another key.
const digestsToReseal = `(digests IS NULL AND (digest_sha256 IS NOT NULL OR digest_md5 IS NOT NULL))
	OR (digests IS NOT NULL AND ?1 != '' AND substr(digests, 1, length(?1)) != ?1)`

// resealDigests seals under k up to limit (-1: all) verifiers of table
// (one of digestTables) that digestsToReseal selects with prefix.
func (d *DB) resealDigests(ctx context.Context, tx *checkedTx, k *secretbox.Key, table, prefix string, limit int) (int, error) {
	type row struct {
		id       string
		sha, md5 []byte
		digests  sql.NullString
	}
	var todo []row
	rows, err := tx.QueryContext(ctx, `SELECT id, digest_sha256, digest_md5, digests FROM `+table+` WHERE `+digestsToReseal+` LIMIT ?2`, prefix, limit)
	if err != nil {
		return 0, err
	}
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.id, &r.sha, &r.md5, &r.digests); err != nil {
			rows.Close()
			return 0, err
		}
		todo = append(todo, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	for _, r := range todo {
		if r.digests.Valid {
			if r.sha, r.md5, err = d.openDigests(ctx, tx, r.id, r.digests.String); err != nil {
				return 0, err
			}
		}
		v, err := k.SealPair(secretbox.CredentialDigests, r.id, r.sha, r.md5)
		if err != nil {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE `+table+` SET digests = ?, digest_sha256 = NULL, digest_md5 = NULL WHERE id = ?`, v, r.id); err != nil {
			return 0, err
		}
	}
	return len(todo), nil
}

func idColumn(table string) string {
	if table == "sessions" {
		return "access_key_id"
	}
	return "id"
}

// RotateKey makes next the key new secrets are sealed under, then reseals
// every secret under it, batch rows per transaction, so that writers wait
// at most one small transaction. Readers, here and in other processes,
// keep working throughout: a value names its key, the old key stays known
// until FinishRotation, and next is recorded with file (absolute; where
// other processes read it). It returns how many rows it rewrote.
func (d *DB) RotateKey(ctx context.Context, next *secretbox.Key, file string, batch int) (int, error) {
	if batch <= 0 {
		batch = 50
	}
	current, _, _, err := d.keyStates(ctx)
	if err != nil {
		return 0, err
	}
	if current == "" {
		return 0, errors.New("the store has no key yet: open it once with a key first")
	}
	d.keys.Add(next)
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	if current != next.ID() {
		if _, err := tx.ExecContext(ctx, `UPDATE secret_keys SET state = 'retiring' WHERE state = 'current'`); err != nil {
			return 0, err
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO secret_keys (id, file, state) VALUES (?, ?, 'current')
		ON CONFLICT (id) DO UPDATE SET file = excluded.file, state = 'current'`, next.ID(), file); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, err
	}
	total := 0
	for {
		n, err := d.resealBatch(ctx, next, batch)
		if err != nil {
			return total, err
		}
		total += n
		if n == 0 {
			return total, nil
		}
	}
}

func (d *DB) resealBatch(ctx context.Context, next *secretbox.Key, batch int) (int, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	k, err := d.sealingKey(ctx, tx)
	if err != nil {
		return 0, err
	}
	if k == nil || k.ID() != next.ID() {
		return 0, errors.New("another store key rotation took over: run it again")
	}
	n, err := d.reseal(ctx, tx, next, batch)
	if err != nil {
		return 0, err
	}
	return n, tx.Commit()
}

// FinishRotation forgets the retired keys, once nothing is sealed under
// them, and truncates the WAL that held values they sealed.
func (d *DB) FinishRotation(ctx context.Context) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	k, err := d.sealingKey(ctx, tx)
	if err != nil {
		return err
	}
	if k == nil {
		return errors.New("the store has no key")
	}
	prefix := secretbox.Prefix(k.ID())
	var left int
	if err := tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM access_keys WHERE sealed = 0 OR substr(secret, 1, length(?1)) != ?1)
		+ (SELECT count(*) FROM sessions WHERE sealed = 0 OR substr(secret, 1, length(?1)) != ?1)
		`+countEach(digestTables, digestsToReseal), prefix).Scan(&left); err != nil {
		return err
	}
	if left > 0 {
		return fmt.Errorf("%d secrets are not yet sealed under store key %s", left, k.ID())
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM secret_keys WHERE state = 'retiring'`); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	return d.checkpoint(ctx)
}

// CurrentKey is the id of the key new secrets are sealed under and the
// file recorded for it; "" in a store without a key.
func (d *DB) CurrentKey(ctx context.Context) (id, file string, err error) {
	id, file, _, err = d.keyStates(ctx)
	return id, file, err
}

// SetKeyFile records where the key id is read from (after moving it).
func (d *DB) SetKeyFile(ctx context.Context, id, file string) error {
	_, err := d.db.ExecContext(ctx, `UPDATE secret_keys SET file = ? WHERE id = ?`, file, id)
	return err
}

// prepareFiles makes a new store file 0600 before SQLite first opens it:
// SQLite gives the -wal and -shm files it creates the mode of the
// database file, so they are born 0600 too. A store, WAL or SHM open to
// group or others is refused: secrets may already have been read.
//
// A file that exists is not opened: closing a descriptor of it drops
// every POSIX lock this process holds on it, those of the connections of
// another store of the file in this process too, and another process
// then finds it in use by no one (walIndexes). It is only asked whether
// it may be read and written, as opening it did.
func prepareFiles(path string) error {
	if err := secretbox.CheckPrivate(path, path+"-wal", path+"-shm"); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		if _, serr := os.Stat(path); !errors.Is(serr, fs.ErrNotExist) {
			return readWrite(path)
		}
		// A symbolic link to a file to create (O_EXCL does not follow it).
		f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	}
	if err != nil {
		return err
	}
	return f.Close()
}
