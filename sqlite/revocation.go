package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/secretbox"
)

// credentialWhere is the condition of f on the credentials table and its
// arguments.
func credentialWhere(ctx context.Context, q rowsQuerier, f shiftkey.CredentialFilter) (string, []any, error) {
	conds := []string{"1"}
	var args []any
	for _, c := range []struct{ col, v string }{{"cluster", f.Scope}, {"login_name", f.LoginName}, {"id", f.ID}} {
		if c.v != "" {
			conds, args = append(conds, c.col+" = ?"), append(args, c.v)
		}
	}
	if f.PrincipalARN != "" {
		arns := []any{f.PrincipalARN}
		if f.SessionsOf {
			started, err := shiftkey.SessionsStartedBy(f.PrincipalARN, func(sources []string, prefix string) ([]shiftkey.SessionStart, error) {
				where, args := `source_arn IN (`+marks(len(sources))+`)`, anys(sources)
				if prefix != "" {
					where, args = "("+where+" OR substr(source_arn, 1, ?) = ?)", append(args, len(prefix), prefix)
				}
				return queryAll(ctx, q, func(r scanner) (shiftkey.SessionStart, error) {
					var s shiftkey.SessionStart
					return s, r.Scan(&s.SourceARN, &s.RoleName, &s.SessionName)
				}, `SELECT source_arn, role_name, session_name FROM sessions WHERE `+where+`
					UNION ALL SELECT source_arn, role_name, session_name FROM ended_sessions WHERE `+where, append(args, args...)...)
			})
			if err != nil {
				return "", nil, err
			}
			for _, a := range started {
				arns = append(arns, a)
			}
		}
		cond := "principal_arn IN (" + marks(len(arns)) + ")"
		args = append(args, arns...)
		if prefix, ok := shiftkey.RoleSessionsPrefix(f.PrincipalARN); ok {
			// A role's credentials are its sessions'. Compared, not LIKE:
			// a role name may hold an underscore.
			cond = "(" + cond + " OR substr(principal_arn, 1, ?) = ?)"
			args = append(args, len(prefix), prefix)
		}
		conds = append(conds, cond)
	}
	if f.AccessKeyID != "" {
		keys, err := issuingKeys(ctx, q, f.AccessKeyID)
		if err != nil {
			return "", nil, err
		}
		conds = append(conds, "access_key_id IN ("+marks(len(keys))+")")
		args = append(args, keys...)
	}
	return strings.Join(conds, " AND "), args, nil
}

// issuingKeys is key and the temporary keys of the sessions it started,
// chains included, ended ones too: the keys whose calls issued what key
// obtained.
func issuingKeys(ctx context.Context, q rowsQuerier, key string) ([]any, error) {
	started, err := shiftkey.SessionKeysStartedBy(key, func(sources []string) ([]string, error) {
		in, list := anys(sources), marks(len(sources))
		return queryAll(ctx, q, func(r scanner) (k string, err error) { return k, r.Scan(&k) },
			`SELECT access_key_id FROM sessions WHERE source_access_key_id IN (`+list+`)
			UNION ALL SELECT access_key_id FROM ended_sessions WHERE source_access_key_id IN (`+list+`)`, append(in, in...)...)
	})
	if err != nil {
		return nil, err
	}
	return anys(append([]string{key}, started...)), nil
}

// marks is n comma-separated placeholders, for "IN (" + marks(n) + ")"
// (n ≥ 1).
func marks(n int) string { return "?" + strings.Repeat(",?", n-1) }

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

const listColumns = `id, cluster, login_name, db_user, db_name, db_groups, auto_create, principal_arn, coalesce(access_key_id, ''), request_id, created_at, expires_at`

func scanListed(r scanner) (*shiftkey.Credential, error) {
	var c shiftkey.Credential
	var groups string
	var created, expires int64
	if err := r.Scan(&c.ID, &c.Cluster, &c.LoginName, &c.DBUser, &c.DBName, &groups, &c.AutoCreate, &c.PrincipalARN, &c.AccessKeyID, &c.RequestID, &created, &expires); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(groups), &c.DBGroups); err != nil {
		return nil, fmt.Errorf("credential %s groups: %w", c.ID, err)
	}
	c.CreatedAt, c.ExpiresAt = fromMillis(created), fromMillis(expires)
	return &c, nil
}

// ListCredentials returns the credentials matching f unexpired at now.
func (d *DB) ListCredentials(ctx context.Context, f shiftkey.CredentialFilter, now time.Time) ([]*shiftkey.Credential, error) {
	where, args, err := credentialWhere(ctx, d.db, f)
	if err != nil {
		return nil, err
	}
	return queryAll(ctx, d.db, scanListed, `SELECT `+listColumns+` FROM credentials WHERE `+where+` AND expires_at > ? ORDER BY created_at, id`,
		append(args, millis(now))...)
}

// RevokeCredentials deletes the credentials matching f and records their
// revocation in one transaction, then drops the cached reads of their
// logins: the next login of any of them is refused.
func (d *DB) RevokeCredentials(ctx context.Context, f shiftkey.CredentialFilter, at time.Time, terminate bool) ([]*shiftkey.Credential, error) {
	if f.IsZero() {
		return nil, shiftkey.ErrEmptyFilter
	}
	var out []*shiftkey.Credential
	defer func() {
		for _, c := range out {
			d.cache.Invalidate(loginKey{Cluster: c.Cluster, Login: c.LoginName})
		}
	}()
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	where, args, err := credentialWhere(ctx, tx, f)
	if err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+listColumns+` FROM credentials WHERE `+where+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		c, err := scanListed(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		out = append(out, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, c := range out {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO credential_revocations (id, cluster, login_name, principal_arn, expires_at, revoked_at, terminate,
			stored_key, server_key, db_user, digest_sha256, digest_md5, digests, access_key_id, principal_id, role_arn, session_created_at)
			SELECT id, cluster, login_name, principal_arn, expires_at, ?, ?, stored_key, server_key, db_user, digest_sha256, digest_md5, digests,
			access_key_id, principal_id, role_arn, session_created_at FROM credentials WHERE id = ?`,
			millis(at), terminate, c.ID); err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM credentials WHERE id = ?`, c.ID); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		// The cached reads are dropped all the same: a commit that went to
		// a deleted file (checkedTx) is what this process's open
		// connections read.
		return nil, err
	}
	return out, nil
}

const sessionColumns = `access_key_id, role_name, role_id, session_name, source_arn, coalesce(source_access_key_id, ''), created_at, expires_at`

func scanSession(r scanner) (*shiftkey.Session, error) {
	var s shiftkey.Session
	var created, expires int64
	err := r.Scan(&s.AccessKeyID, &s.RoleName, &s.RoleID, &s.SessionName, &s.SourceARN, &s.SourceAccessKeyID, &created, &expires)
	s.CreatedAt, s.ExpiresAt = fromMillis(created), fromMillis(expires)
	return &s, err
}

// SessionsStartedWith returns the live sessions of key and those it
// started, chains included (shiftkey.SessionAdmin).
func (d *DB) SessionsStartedWith(ctx context.Context, key string, now time.Time) ([]*shiftkey.Session, error) {
	keys, err := issuingKeys(ctx, d.db, key)
	if err != nil {
		return nil, err
	}
	return queryAll(ctx, d.db, scanSession, `SELECT `+sessionColumns+` FROM sessions WHERE access_key_id IN (`+marks(len(keys))+`)
		AND expires_at > ? ORDER BY created_at, access_key_id`, append(keys, millis(now))...)
}

// EndSessions deletes the sessions of key and those it started, chains
// included, and records them as ended, in one transaction
// (shiftkey.SessionAdmin). The server that serves this file hears of it
// by CatchUp, before it answers the next call.
func (d *DB) EndSessions(ctx context.Context, key string, at time.Time) ([]*shiftkey.Session, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	keys, err := issuingKeys(ctx, tx, key)
	if err != nil {
		return nil, err
	}
	out, err := queryAll(ctx, tx, scanSession, `SELECT `+sessionColumns+` FROM sessions WHERE access_key_id IN (`+marks(len(keys))+`)
		ORDER BY created_at, access_key_id`, keys...)
	if err != nil {
		return nil, err
	}
	for _, s := range out {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO ended_sessions (access_key_id, source_access_key_id, source_arn, role_name, role_id, session_name,
			created_at, expires_at, ended_at) SELECT access_key_id, source_access_key_id, source_arn, role_name, role_id, session_name, created_at, expires_at, ?
			FROM sessions WHERE access_key_id = ?`, millis(at), s.AccessKeyID); err != nil {
			return nil, err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE access_key_id = ?`, s.AccessKeyID); err != nil {
			return nil, err
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return out, nil
}

const revocationColumns = `id, cluster, login_name, principal_arn, expires_at, revoked_at, terminate, coalesce(access_key_id, '')`

func scanRevocation(r scanner) (v shiftkey.Revocation, err error) {
	var exp, at int64
	err = r.Scan(&v.ID, &v.Scope, &v.LoginName, &v.PrincipalARN, &exp, &at, &v.Terminate, &v.AccessKeyID)
	v.ExpiresAt, v.RevokedAt = fromMillis(exp), fromMillis(at)
	return v, err
}

// Revocations returns the revocation records of those of ids revoked.
func (d *DB) Revocations(ctx context.Context, ids []string) ([]shiftkey.Revocation, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	return queryAll(ctx, d.db, scanRevocation, `SELECT `+revocationColumns+` FROM credential_revocations
		WHERE id IN (`+marks(len(ids))+`) ORDER BY id`, args...)
}

// TerminateRevoked marks terminate the revocations matching f made without
// it (shiftkey.CredentialAdmin). The server serving this file hears of it
// by CatchUp: each row updated is moved to the largest rowid, which is
// what CatchUp's summary of the table reads (fingerprintQuery), so that an
// update counts as a new revocation does.
func (d *DB) TerminateRevoked(ctx context.Context, f shiftkey.CredentialFilter) ([]shiftkey.Revocation, error) {
	if f.IsZero() {
		return nil, shiftkey.ErrEmptyFilter
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	// The filter's columns are the credentials table's, kept by each
	// revocation under the same names.
	where, args, err := credentialWhere(ctx, tx, f)
	if err != nil {
		return nil, err
	}
	out, err := queryAll(ctx, tx, scanRevocation, `SELECT `+revocationColumns+` FROM credential_revocations WHERE `+where+
		` AND NOT terminate ORDER BY revoked_at, id`, args...)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if _, err := tx.ExecContext(ctx, `UPDATE credential_revocations SET terminate = 1,
			rowid = (SELECT max(rowid) + 1 FROM credential_revocations) WHERE id = ?`, out[i].ID); err != nil {
			return nil, err
		}
		out[i].Terminate = true
	}
	if err := tx.Commit(); err != nil {
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
		digests sql.NullString
	}
	rows, err := queryAll(ctx, d.db, func(r scanner) (*row, error) {
		var v row
		var exp int64
		var sessionCreated sql.NullInt64
		err := r.Scan(&v.c.ID, &v.c.Cluster, &v.c.LoginName, &v.c.DBUser, &v.c.PrincipalARN, &exp, &v.c.StoredKey, &v.c.ServerKey,
			&v.c.DigestSHA256, &v.c.DigestMD5, &v.digests, &v.c.IssuedTo.PrincipalID, &v.c.IssuedTo.RoleARN, &sessionCreated)
		v.c.ExpiresAt = fromMillis(exp)
		if sessionCreated.Valid {
			v.c.IssuedTo.SessionCreatedAt = fromMillis(sessionCreated.Int64)
		}
		return &v, err
	}, `SELECT id, cluster, login_name, db_user, principal_arn, expires_at, stored_key, server_key, digest_sha256, digest_md5, digests,
		coalesce(principal_id, ''), coalesce(role_arn, ''), session_created_at
		FROM credential_revocations WHERE cluster = ? AND login_name = ? AND expires_at > ? AND length(stored_key) > 0
		ORDER BY revoked_at DESC, expires_at DESC, id LIMIT ?`, cluster, login, millis(now), shiftkey.RevokedLookupLimit)
	if err != nil {
		return nil, err
	}
	out := make([]*shiftkey.Credential, len(rows))
	for i, v := range rows {
		if v.digests.Valid {
			if v.c.DigestSHA256, v.c.DigestMD5, err = d.openDigests(ctx, d.db, v.c.ID, v.digests.String); err != nil {
				return nil, fmt.Errorf("revoked credential %s: %w", v.c.ID, err)
			}
		}
		out[i] = &v.c
	}
	return out, nil
}

var _ shiftkey.RevokedKeys = (*DB)(nil)
