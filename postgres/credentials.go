package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
)

// credentialChange is what a write to the credentials of (scope, login)
// tells the other replicas.
func credentialChange(scope, login string) shiftkey.Change {
	return shiftkey.Change{Kind: shiftkey.KindCredential, Name: scope + "\x00" + login}
}

// LoginIterations returns the distinct iteration counts of cluster's
// login salts (shiftkey.SaltIterations), ascending: a scan of the
// cluster's salts, which a gateway makes every few minutes.
func (d *DB) LoginIterations(ctx context.Context, cluster string) ([]int, error) {
	return queryAll(ctx, d.pool, func(r pgx.Row) (n int, err error) { return n, r.Scan(&n) },
		`SELECT DISTINCT iterations FROM login_salts WHERE cluster = $1 ORDER BY iterations`, cluster)
}

// LoginSalt returns the salt of (cluster, login), storing fresh if none
// exists. A salt seen before comes from memory (saltCache); else it is
// read, and a login without one goes through the group writer: INSERT …
// ON CONFLICT DO NOTHING waits for a concurrent insert of the same key to
// commit, and the SELECT after it (a new snapshot) then reads the winner's
// salt, so concurrent issuers, on any replica, share one.
func (d *DB) LoginSalt(ctx context.Context, cluster, login, scopeID string, fresh shiftkey.LoginSalt) (shiftkey.LoginSalt, error) {
	k := saltKey(cluster, login)
	s, ok, gen := d.salts.get(k)
	if ok {
		// The issue's credential follows (groupcommit.go).
		d.writer.q.Expect()
		return s, nil
	}
	err := d.pool.QueryRow(ctx, saltSelect, cluster, login).Scan(&s.Salt, &s.Iterations)
	if errors.Is(err, pgx.ErrNoRows) {
		r := d.writer.submit(ctx, &shiftkey.IssueWrite{Salt: &shiftkey.SaltWrite{Cluster: cluster, Login: login, ScopeID: scopeID, Fresh: fresh}})
		s, err = r.Salt, r.Err
	}
	if err != nil {
		return shiftkey.LoginSalt{}, err
	}
	d.salts.put(k, s, gen)
	d.writer.q.Expect()
	return s, nil
}

// WriteErr is the failure of the issue path's last write while none has
// committed since (shiftkey.WriteHealth).
func (d *DB) WriteErr() error { return d.writer.health.Err() }

// CreateCredential stores c through the group writer (groupcommit.go):
// the commit is durable when it returns. Its Redshift verifiers are
// sealed under the store's current key.
func (d *DB) CreateCredential(ctx context.Context, c *shiftkey.Credential) error {
	err := d.writer.submit(ctx, &shiftkey.IssueWrite{Credential: c}).Err
	k := loginKey{Cluster: c.Cluster, Login: c.LoginName}
	if err != nil {
		d.creds.Invalidate(k) // it may have committed
	} else {
		d.creds.Added(k, asRead(c))
	}
	return err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// DeleteCredentials removes every credential of (cluster, login).
func (d *DB) DeleteCredentials(ctx context.Context, cluster, login string) error {
	_, err := d.write(ctx, []shiftkey.Change{credentialChange(cluster, login)},
		st(`DELETE FROM credentials WHERE cluster = $1 AND login_name = $2`, cluster, login))
	d.creds.Invalidate(loginKey{Cluster: cluster, Login: login}) // even on an error: it may have committed
	return err
}

// DeleteExpiredCredentials removes credentials (and revocation records)
// that expired before t. Every replica runs it: the DELETE is idempotent,
// and replicas racing on the same rows each delete what the others have
// not (row locks), so the counts add up to the rows removed.
func (d *DB) DeleteExpiredCredentials(ctx context.Context, t time.Time) (int, error) {
	var changes []shiftkey.Change
	n, err := d.write(ctx, changes,
		st(`DELETE FROM credentials WHERE expires_at <= $1`, t),
		st(`DELETE FROM credential_revocations WHERE expires_at <= $1`, t))
	if err != nil {
		d.creds.InvalidateIf(nil)
		return 0, err
	}
	if n[0] > 0 {
		d.creds.InvalidateIf(nil)
		// Caches may hold reads made at an earlier now.
		if _, err := d.write(ctx, []shiftkey.Change{{Kind: shiftkey.KindCredential}}); err != nil {
			return int(n[0]), err
		}
	}
	return int(n[0]), nil
}
