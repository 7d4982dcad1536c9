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

// LoginSalt returns the salt of (cluster, login), storing fresh if none
// exists. A salt seen before comes from memory (saltCache); else it is
// read, and a login without one goes through the group writer: INSERT …
// ON CONFLICT DO NOTHING waits for a concurrent insert of the same key to
// commit, and the SELECT after it (a new snapshot) then reads the winner's
// salt, so concurrent issuers, on any replica, share one.
func (d *DB) LoginSalt(ctx context.Context, cluster, login string, fresh shiftkey.LoginSalt) (shiftkey.LoginSalt, error) {
	k := saltKey(cluster, login)
	s, ok, gen := d.salts.get(k)
	if ok {
		// The issue's credential follows (groupcommit.go).
		d.writer.q.Expect()
		return s, nil
	}
	err := d.pool.QueryRow(ctx, saltSelect, cluster, login).Scan(&s.Salt, &s.Iterations)
	if errors.Is(err, pgx.ErrNoRows) {
		r := d.writer.submit(ctx, &shiftkey.IssueWrite{Salt: &shiftkey.SaltWrite{Cluster: cluster, Login: login, Fresh: fresh}})
		s, err = r.Salt, r.Err
	}
	if err != nil {
		return shiftkey.LoginSalt{}, err
	}
	d.salts.put(k, s, gen)
	d.writer.q.Expect()
	return s, nil
}

// CreateCredential stores c through the group writer (groupcommit.go):
// the commit is durable when it returns. Its Redshift verifiers are
// sealed under the store's current key.
func (d *DB) CreateCredential(ctx context.Context, c *shiftkey.Credential) error {
	return d.writer.submit(ctx, &shiftkey.IssueWrite{Credential: c}).Err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// LiveCredentials returns the unexpired credentials of (cluster, login) and
// its salt, read from the database at every call (one query): a
// credential revoked or deleted by any replica is refused at once.
func (d *DB) LiveCredentials(ctx context.Context, cluster, login string, now time.Time) ([]*shiftkey.Credential, shiftkey.LoginSalt, bool, error) {
	rows, err := d.pool.Query(ctx, `SELECT s.salt, s.iterations, c.id, c.db_user, c.db_name, c.db_groups, c.auto_create, c.stored_key,
		c.server_key, c.digest_sha256, c.digest_md5, c.digests, c.principal_arn, c.request_id, c.created_at, c.expires_at
		FROM login_salts s LEFT JOIN credentials c ON c.cluster = s.cluster AND c.login_name = s.login_name AND c.expires_at > $3
		WHERE s.cluster = $1 AND s.login_name = $2 ORDER BY c.created_at, c.id`, cluster, login, now)
	if err != nil {
		return nil, shiftkey.LoginSalt{}, false, err
	}
	defer rows.Close()
	var salt shiftkey.LoginSalt
	var out []*shiftkey.Credential
	known := false
	for rows.Next() {
		known = true
		var id, dbUser, dbName, principal, requestID, digests *string
		var autoCreate *bool
		var created, expires *time.Time
		c := &shiftkey.Credential{Cluster: cluster, LoginName: login}
		if err := rows.Scan(&salt.Salt, &salt.Iterations, &id, &dbUser, &dbName, &c.DBGroups, &autoCreate, &c.StoredKey,
			&c.ServerKey, &c.DigestSHA256, &c.DigestMD5, &digests, &principal, &requestID, &created, &expires); err != nil {
			return nil, shiftkey.LoginSalt{}, false, err
		}
		if id == nil { // the salt without any live credential
			continue
		}
		c.ID, c.DBUser, c.DBName, c.PrincipalARN, c.RequestID, c.AutoCreate = *id, *dbUser, *dbName, *principal, *requestID, *autoCreate
		c.CreatedAt, c.ExpiresAt = created.UTC(), expires.UTC()
		if digests != nil {
			if c.DigestSHA256, c.DigestMD5, err = d.openDigests(ctx, d.pool, c.ID, *digests); err != nil {
				return nil, shiftkey.LoginSalt{}, false, err
			}
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, shiftkey.LoginSalt{}, false, err
	}
	if !known {
		return nil, shiftkey.LoginSalt{}, false, nil
	}
	return out, salt, true, nil
}

// DeleteCredentials removes every credential of (cluster, login).
func (d *DB) DeleteCredentials(ctx context.Context, cluster, login string) error {
	_, err := d.write(ctx, []shiftkey.Change{credentialChange(cluster, login)},
		st(`DELETE FROM credentials WHERE cluster = $1 AND login_name = $2`, cluster, login))
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
		return 0, err
	}
	if n[0] > 0 {
		// Caches may hold reads made at an earlier now.
		if _, err := d.write(ctx, []shiftkey.Change{{Kind: shiftkey.KindCredential}}); err != nil {
			return int(n[0]), err
		}
	}
	return int(n[0]), nil
}
