package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/secretbox"
)

// credentialWhere is the condition of f on the credentials table, with its
// arguments numbered from $1.
func credentialWhere(ctx context.Context, q querier, f shiftkey.CredentialFilter) (string, []any, error) {
	var conds []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, fmt.Sprintf(cond, len(args)))
	}
	if f.Scope != "" {
		add("cluster = $%d", f.Scope)
	}
	if f.LoginName != "" {
		add("login_name = $%d", f.LoginName)
	}
	if f.ID != "" {
		add("id = $%d", f.ID)
	}
	if f.PrincipalARN != "" {
		arns := []string{f.PrincipalARN}
		if f.SessionsOf {
			started, err := shiftkey.SessionsStartedBy(f.PrincipalARN, func(sources []string, prefix string) ([]shiftkey.SessionStart, error) {
				// An empty prefix matches nothing: no ARN is empty.
				where := `(source_arn = ANY($1) OR ($2 <> '' AND left(source_arn, length($2)) = $2))`
				return queryAll(ctx, q, func(r pgx.Row) (shiftkey.SessionStart, error) {
					var s shiftkey.SessionStart
					return s, r.Scan(&s.SourceARN, &s.RoleName, &s.SessionName)
				}, `SELECT source_arn, role_name, session_name FROM sessions WHERE `+where+`
					UNION ALL SELECT source_arn, role_name, session_name FROM ended_sessions WHERE `+where, sources, prefix)
			})
			if err != nil {
				return "", nil, err
			}
			arns = append(arns, started...)
		}
		if prefix, ok := shiftkey.RoleSessionsPrefix(f.PrincipalARN); ok {
			// A role's credentials are its sessions'. Compared, not LIKE:
			// a role name may hold an underscore.
			args = append(args, arns, prefix)
			conds = append(conds, fmt.Sprintf("(principal_arn = ANY($%d) OR left(principal_arn, length($%d::text)) = $%d::text)", len(args)-1, len(args), len(args)))
		} else {
			add("principal_arn = ANY($%d)", arns)
		}
	}
	if f.AccessKeyID != "" {
		keys, err := issuingKeys(ctx, q, f.AccessKeyID)
		if err != nil {
			return "", nil, err
		}
		add("access_key_id = ANY($%d)", keys)
	}
	if len(conds) == 0 {
		return "true", nil, nil
	}
	return strings.Join(conds, " AND "), args, nil
}

// issuingKeys is key and the temporary keys of the sessions it started,
// chains included, ended ones too: the keys whose calls issued what key
// obtained.
func issuingKeys(ctx context.Context, q querier, key string) ([]string, error) {
	started, err := shiftkey.SessionKeysStartedBy(key, func(sources []string) ([]string, error) {
		return queryAll(ctx, q, func(r pgx.Row) (k string, err error) { return k, r.Scan(&k) },
			`SELECT access_key_id FROM sessions WHERE source_access_key_id = ANY($1)
			UNION ALL SELECT access_key_id FROM ended_sessions WHERE source_access_key_id = ANY($1)`, sources)
	})
	if err != nil {
		return nil, err
	}
	return append([]string{key}, started...), nil
}

const listColumns = `id, cluster, login_name, db_user, db_name, db_groups, auto_create, principal_arn, coalesce(access_key_id, ''), request_id, created_at, expires_at`

func scanListed(r pgx.Row) (*shiftkey.Credential, error) {
	var c shiftkey.Credential
	err := r.Scan(&c.ID, &c.Cluster, &c.LoginName, &c.DBUser, &c.DBName, &c.DBGroups, &c.AutoCreate, &c.PrincipalARN, &c.AccessKeyID, &c.RequestID, &c.CreatedAt, &c.ExpiresAt)
	c.CreatedAt, c.ExpiresAt = utc(c.CreatedAt), utc(c.ExpiresAt)
	return &c, err
}

// ListCredentials returns the credentials matching f unexpired at now.
func (d *DB) ListCredentials(ctx context.Context, f shiftkey.CredentialFilter, now time.Time) ([]*shiftkey.Credential, error) {
	where, args, err := credentialWhere(ctx, d.pool, f)
	if err != nil {
		return nil, err
	}
	args = append(args, now)
	return queryAll(ctx, d.pool, scanListed, `SELECT `+listColumns+` FROM credentials WHERE `+where+
		fmt.Sprintf(` AND expires_at > $%d ORDER BY created_at, id`, len(args)), args...)
}

// RevokeCredentials deletes the credentials matching f and records their
// revocation, and tells every replica which logins changed, in one
// transaction: a gateway anywhere refuses them once its change feed has
// delivered that (its cached logins are served only while the feed is
// current), and ends their sessions when terminate is set.
func (d *DB) RevokeCredentials(ctx context.Context, f shiftkey.CredentialFilter, at time.Time, terminate bool) ([]*shiftkey.Credential, error) {
	if f.IsZero() {
		return nil, shiftkey.ErrEmptyFilter
	}
	var out []*shiftkey.Credential
	err := d.inTx(ctx, func(tx pgx.Tx, notify func(...shiftkey.Change)) error {
		where, args, err := credentialWhere(ctx, tx, f)
		if err != nil {
			return err
		}
		n := len(args)
		args = append(args, at, terminate)
		out, err = queryAll(ctx, tx, scanListed, fmt.Sprintf(`WITH r AS (DELETE FROM credentials WHERE %s RETURNING *),
			rec AS (INSERT INTO credential_revocations (id, cluster, login_name, principal_arn, expires_at, revoked_at, terminate, stored_key, server_key, db_user,
					digest_sha256, digest_md5, digests, access_key_id, principal_id, role_arn, session_created_at)
				SELECT id, cluster, login_name, principal_arn, expires_at, $%d, $%d, stored_key, server_key, db_user, digest_sha256, digest_md5, digests, access_key_id,
					principal_id, role_arn, session_created_at
				FROM r ON CONFLICT (id) DO NOTHING)
			SELECT `+listColumns+` FROM r ORDER BY created_at, id`, where, n+1, n+2), args...)
		if err != nil {
			return err
		}
		seen := map[shiftkey.Change]bool{}
		for _, c := range out {
			if ch := credentialChange(c.Cluster, c.LoginName); !seen[ch] {
				seen[ch] = true
				notify(ch)
			}
		}
		return nil
	})
	if err != nil {
		d.creds.InvalidateIf(nil) // it may have committed
	}
	for _, c := range out {
		d.creds.Invalidate(loginKey{Cluster: c.Cluster, Login: c.LoginName})
	}
	return out, err
}

const sessionColumns = `access_key_id, role_name, role_id, session_name, source_arn, coalesce(source_access_key_id, ''), created_at, expires_at`

func scanSession(r pgx.Row) (*shiftkey.Session, error) {
	var s shiftkey.Session
	err := r.Scan(&s.AccessKeyID, &s.RoleName, &s.RoleID, &s.SessionName, &s.SourceARN, &s.SourceAccessKeyID, &s.CreatedAt, &s.ExpiresAt)
	s.CreatedAt, s.ExpiresAt = utc(s.CreatedAt), utc(s.ExpiresAt)
	return &s, err
}

// SessionsStartedWith returns the live sessions of key and those it
// started, chains included (shiftkey.SessionAdmin).
func (d *DB) SessionsStartedWith(ctx context.Context, key string, now time.Time) ([]*shiftkey.Session, error) {
	keys, err := issuingKeys(ctx, d.pool, key)
	if err != nil {
		return nil, err
	}
	return queryAll(ctx, d.pool, scanSession, `SELECT `+sessionColumns+` FROM sessions WHERE access_key_id = ANY($1) AND expires_at > $2
		ORDER BY created_at, access_key_id`, keys, now)
}

// EndSessions deletes the sessions of key and those it started, chains
// included, records them as ended, and tells every replica which sessions
// went, in one transaction (shiftkey.SessionAdmin): a replica's cached
// session is dropped once its change feed has delivered that, and while
// its feed is not current it reads every session from the store.
func (d *DB) EndSessions(ctx context.Context, key string, at time.Time) ([]*shiftkey.Session, error) {
	var out []*shiftkey.Session
	err := d.inTx(ctx, func(tx pgx.Tx, notify func(...shiftkey.Change)) error {
		keys, err := issuingKeys(ctx, tx, key)
		if err != nil {
			return err
		}
		out, err = queryAll(ctx, tx, scanSession, `WITH e AS (DELETE FROM sessions WHERE access_key_id = ANY($1) RETURNING *),
			rec AS (INSERT INTO ended_sessions (access_key_id, source_access_key_id, source_arn, role_name, role_id, session_name, created_at, expires_at, ended_at)
				SELECT access_key_id, source_access_key_id, source_arn, role_name, role_id, session_name, created_at, expires_at, $2 FROM e
				ON CONFLICT (access_key_id) DO NOTHING)
			SELECT `+sessionColumns+` FROM e ORDER BY created_at, access_key_id`, keys, at)
		if err != nil {
			return err
		}
		for _, s := range out {
			notify(shiftkey.Change{Kind: shiftkey.KindSession, Name: s.AccessKeyID})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

const revocationColumns = `id, cluster, login_name, principal_arn, expires_at, revoked_at, terminate, coalesce(access_key_id, '')`

func scanRevocation(r pgx.Row) (v shiftkey.Revocation, err error) {
	err = r.Scan(&v.ID, &v.Scope, &v.LoginName, &v.PrincipalARN, &v.ExpiresAt, &v.RevokedAt, &v.Terminate, &v.AccessKeyID)
	v.ExpiresAt, v.RevokedAt = utc(v.ExpiresAt), utc(v.RevokedAt)
	return v, err
}

// Revocations returns the revocation records of those of ids revoked.
func (d *DB) Revocations(ctx context.Context, ids []string) ([]shiftkey.Revocation, error) {
	return queryAll(ctx, d.pool, scanRevocation, `SELECT `+revocationColumns+` FROM credential_revocations WHERE id = ANY($1) ORDER BY id`, ids)
}

// TerminateRevoked marks terminate the revocations matching f made without
// it, and tells every replica which logins changed, in one transaction
// (shiftkey.CredentialAdmin): each replica's revocation watch then checks
// those logins' sessions, as after a revoke with terminate.
func (d *DB) TerminateRevoked(ctx context.Context, f shiftkey.CredentialFilter) ([]shiftkey.Revocation, error) {
	if f.IsZero() {
		return nil, shiftkey.ErrEmptyFilter
	}
	var out []shiftkey.Revocation
	err := d.inTx(ctx, func(tx pgx.Tx, notify func(...shiftkey.Change)) error {
		// The filter's columns are the credentials table's, kept by each
		// revocation under the same names.
		where, args, err := credentialWhere(ctx, tx, f)
		if err != nil {
			return err
		}
		out, err = queryAll(ctx, tx, scanRevocation, `WITH u AS (UPDATE credential_revocations SET terminate = true WHERE `+where+
			` AND NOT terminate RETURNING *) SELECT `+revocationColumns+` FROM u ORDER BY revoked_at, id`, args...)
		if err != nil {
			return err
		}
		seen := map[shiftkey.Change]bool{}
		for _, r := range out {
			if ch := credentialChange(r.Scope, r.LoginName); !seen[ch] {
				seen[ch] = true
				notify(ch)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// RevokedCredentials returns the revoked credentials of (cluster, login)
// unexpired at now, with their SCRAM keys and Redshift verifiers
// (shiftkey.RevokedKeys).
func (d *DB) RevokedCredentials(ctx context.Context, cluster, login string, now time.Time) ([]*shiftkey.Credential, error) {
	var creds []*shiftkey.Credential
	err := secretbox.RereadAfterRotation(func() (err error) { creds, err = d.revokedCredentials(ctx, cluster, login, now); return err })
	return creds, err
}

func (d *DB) revokedCredentials(ctx context.Context, cluster, login string, now time.Time) ([]*shiftkey.Credential, error) {
	type row struct {
		c       shiftkey.Credential
		digests *string
	}
	rows, err := queryAll(ctx, d.pool, func(r pgx.Row) (*row, error) {
		var v row
		var sessionCreated *time.Time
		err := r.Scan(&v.c.ID, &v.c.Cluster, &v.c.LoginName, &v.c.DBUser, &v.c.PrincipalARN, &v.c.ExpiresAt, &v.c.StoredKey, &v.c.ServerKey,
			&v.c.DigestSHA256, &v.c.DigestMD5, &v.digests, &v.c.IssuedTo.PrincipalID, &v.c.IssuedTo.RoleARN, &sessionCreated)
		v.c.ExpiresAt = utc(v.c.ExpiresAt)
		if sessionCreated != nil {
			v.c.IssuedTo.SessionCreatedAt = sessionCreated.UTC()
		}
		return &v, err
	}, `SELECT id, cluster, login_name, db_user, principal_arn, expires_at, stored_key, server_key, digest_sha256, digest_md5, digests,
		coalesce(principal_id, ''), coalesce(role_arn, ''), session_created_at
		FROM credential_revocations WHERE cluster = $1 AND login_name = $2 AND expires_at > $3 AND length(stored_key) > 0
		ORDER BY revoked_at DESC, expires_at DESC, id LIMIT $4`, cluster, login, now, shiftkey.RevokedLookupLimit)
	if err != nil {
		return nil, err
	}
	out := make([]*shiftkey.Credential, len(rows))
	for i, v := range rows {
		if v.digests != nil {
			if v.c.DigestSHA256, v.c.DigestMD5, err = d.openDigests(ctx, d.pool, v.c.ID, *v.digests); err != nil {
				return nil, fmt.Errorf("revoked credential %s: %w", v.c.ID, err)
			}
		}
		out[i] = &v.c
	}
	return out, nil
}

var _ shiftkey.RevokedKeys = (*DB)(nil)
