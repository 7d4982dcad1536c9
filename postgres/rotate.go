package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shiftkey/shiftkey/secretbox"
)

// RotateKey reseals every secret of the store at url (IAM secret keys,
// STS session secrets, credentials' Redshift verifiers, the shared
// secrets) under next, in one transaction that also makes next the
// store's current key, recorded with nextFile (absolute: where replicas
// read it), and forgets old. It returns how many values it resealed.
//
// One transaction: a rotation that fails changes nothing and is run
// again; one that succeeded, run again with the same keys, finds nothing
// to do. While it runs, writes that seal (issues, new access keys and
// sessions) wait for it (they hold sealLock shared; it takes it
// exclusively first), and reads go on with the old values.
//
// Replicas still running with old meet values sealed under next after the
// commit: they read next from nextFile, which must therefore exist at that
// path on every replica's machine, and seal their new writes under it
// from then on. A replica restarted must be given next: the store refuses
// old from now on.
func RotateKey(ctx context.Context, url string, old, next *secretbox.Key, nextFile string) (int, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return 0, fmt.Errorf("postgres store: %w", err)
	}
	defer pool.Close()
	d := &DB{pool: storePool{pool}}
	d.keys.Add(old)
	d.keys.Add(next)
	n := 0
	err = d.inTxPlain(ctx, func(tx pgx.Tx) error {
		// First, so that every later statement's snapshot sees the
		// credentials of the batches it waited for (read committed).
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, sealLock); err != nil {
			return err
		}
		var current string
		err := tx.QueryRow(ctx, `SELECT id FROM secret_keys WHERE state = 'current' FOR UPDATE`).Scan(&current)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return errors.New("the store has no key yet: start a replica with a key first")
		case err != nil:
			return err
		case current != old.ID() && current != next.ID():
			return fmt.Errorf("the store's secrets are sealed under store key %s, not under the key given as the current one (%s)", current, old.ID())
		}
		if current != next.ID() {
			if _, err := tx.Exec(ctx, `UPDATE secret_keys SET state = 'retiring' WHERE state = 'current'`); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO secret_keys (id, file, state) VALUES ($1, $2, 'current')
			ON CONFLICT (id) DO UPDATE SET file = excluded.file, state = 'current'`, next.ID(), nextFile); err != nil {
			return err
		}
		if n, err = d.reseal(ctx, tx, next); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM secret_keys WHERE state = 'retiring'`)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres store: %w", err)
	}
	return n, nil
}

// reseal seals under k every secret sealed under another key (or in the
// clear), and returns how many it rewrote.
func (d *DB) reseal(ctx context.Context, tx pgx.Tx, k *secretbox.Key) (int, error) {
	prefix := secretbox.Prefix(k.ID())
	n := 0
	for _, t := range []struct {
		table, id, col string
		aad            func(string) []byte
	}{
		{"access_keys", "id", "secret", accessKeyAAD},
		{"sessions", "access_key_id", "secret", sessionAAD},
		{"shared_secrets", "name", "value", sharedSecretAAD},
	} {
		type row struct {
			id, value string
			sealed    bool
		}
		rows, err := queryAll(ctx, tx, func(r pgx.Row) (v row, err error) { return v, r.Scan(&v.id, &v.value, &v.sealed) },
			`SELECT `+t.id+`, `+t.col+`, sealed FROM `+t.table+` WHERE NOT sealed OR NOT starts_with(`+t.col+`, $1) FOR UPDATE`, prefix)
		if err != nil {
			return n, err
		}
		for _, r := range rows {
			plain, err := d.openSealed(ctx, tx, r.value, r.sealed, t.aad(r.id))
			if err != nil {
				return n, fmt.Errorf("%s %s: %w", t.table, r.id, err)
			}
			v, err := k.Seal([]byte(plain), t.aad(r.id))
			if err != nil {
				return n, err
			}
			if _, err := tx.Exec(ctx, `UPDATE `+t.table+` SET `+t.col+` = $1, sealed = true WHERE `+t.id+` = $2`, v, r.id); err != nil {
				return n, err
			}
			n++
		}
	}
	for _, table := range digestTables {
		m, err := d.sealDigests(ctx, tx, k, table,
			`(`+digestsInClear+`) OR NOT starts_with(digests, $1)`, prefix)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// digestsInClear selects the rows of a digestTables table whose verifiers
// are not sealed (a store without a key, or rows from before 0002).
const digestsInClear = `digests IS NULL AND (digest_sha256 IS NOT NULL OR digest_md5 IS NOT NULL)`

// digestTables hold Redshift verifiers: the credentials, and the
// revocations that keep theirs (migration 0007).
var digestTables = []string{"credentials", "credential_revocations"}

// sealedDigestCounts is the SQL sum of the sealed verifiers of every
// digestTables table, each term led by " + ".
var sealedDigestCounts = func() string {
	var b strings.Builder
	for _, t := range digestTables {
		b.WriteString(" + (SELECT count(*) FROM " + t + " WHERE digests IS NOT NULL)")
	}
	return b.String()
}()

// sealDigests seals under k the verifiers of the rows of table (one of
// digestTables) that where selects, in the clear or sealed under another
// key, and returns how many it rewrote.
func (d *DB) sealDigests(ctx context.Context, tx pgx.Tx, k *secretbox.Key, table, where string, args ...any) (int, error) {
	type cred struct {
		id       string
		sha, md5 []byte
		digests  *string
	}
	creds, err := queryAll(ctx, tx, func(r pgx.Row) (v cred, err error) { return v, r.Scan(&v.id, &v.sha, &v.md5, &v.digests) },
		`SELECT id, digest_sha256, digest_md5, digests FROM `+table+` WHERE `+where+` FOR UPDATE`, args...)
	if err != nil {
		return 0, err
	}
	for i, c := range creds {
		if c.digests != nil {
			if c.sha, c.md5, err = d.openDigests(ctx, tx, c.id, *c.digests); err != nil {
				return i, fmt.Errorf("%s %s: %w", table, c.id, err)
			}
		}
		v, err := k.SealPair(secretbox.CredentialDigests, c.id, c.sha, c.md5)
		if err != nil {
			return i, err
		}
		if _, err := tx.Exec(ctx, `UPDATE `+table+` SET digests = $1, digest_sha256 = NULL, digest_md5 = NULL WHERE id = $2`, v, c.id); err != nil {
			return i, err
		}
	}
	return len(creds), nil
}

// openSealed is the secret a stored value holds, read within tx.
func (d *DB) openSealed(ctx context.Context, tx pgx.Tx, stored string, sealed bool, aad []byte) (string, error) {
	if !sealed {
		return stored, nil
	}
	id, err := secretbox.KeyID(stored)
	if err != nil {
		return "", err
	}
	k, err := d.key(ctx, tx, id)
	if err != nil {
		return "", err
	}
	b, err := k.Open(stored, aad)
	return string(b), err
}
