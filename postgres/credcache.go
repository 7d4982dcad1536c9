package postgres

import (
	"context"
	"strings"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/gencache"
	"github.com/shiftkey/shiftkey/secretbox"
)

// Logins are served from memory (gencache.Logins, as in the SQLite store),
// so that a login name with thousands of live credentials costs a map
// lookup instead of reading and decoding every row. Other replicas write
// the same tables, which this cache must follow:
//
//   - Deletions (revoke, delete, a cluster's deletion, the expiry purge)
//     NOTIFY in their transaction; the change feed drops the entries they
//     name, this process's own writes drop theirs after they commit.
//   - Entries are served only while the feed is known to be current
//     (feed.fresh): a ping this process NOTIFYs came back less than
//     freshFor ago, so every change committed before it was delivered.
//     With the LISTEN connection lost or lagging, logins read through, so
//     a revocation anywhere stops logins here within freshFor plus a
//     delivery.
//   - New credentials announce nothing (a NOTIFY would serialize every
//     replica's group commits), so an entry can lack one just issued
//     elsewhere: a proof that matches no cached credential asks
//     MissedCredentials, which reads the login's live ids again.
//   - Logins without a salt are never cached: the salt a login's SCRAM
//     exchange starts with must be the issuer's from its first login on.
type credCache = gencache.Logins[loginKey, shiftkey.LoginSalt, *shiftkey.Credential]

type credEntry = gencache.Entry[shiftkey.LoginSalt, *shiftkey.Credential]

type loginKey = gencache.LoginKey

const (
	// maxReread is how many unknown credentials a refresh fetches by id
	// before a full read is as cheap.
	maxReread = 256
)

// Times are in microseconds, PostgreSQL's precision (pgx truncates).
func newCredCache() *credCache {
	return gencache.NewLogins[loginKey, shiftkey.LoginSalt](gencache.MaxLogins, gencache.TTL, func(c *shiftkey.Credential) (string, int64, int64) {
		return c.ID, c.CreatedAt.UnixMicro(), c.ExpiresAt.UnixMicro()
	})
}

// asRead is a copy of c as reading it back gives it: times to the
// microsecond in UTC, groups never nil, empty digests nil.
func asRead(c *shiftkey.Credential) *shiftkey.Credential {
	r := *c
	r.DBGroups = append([]string{}, c.DBGroups...)
	r.CreatedAt, r.ExpiresAt = time.UnixMicro(c.CreatedAt.UnixMicro()).UTC(), time.UnixMicro(c.ExpiresAt.UnixMicro()).UTC()
	if len(r.DigestSHA256) == 0 {
		r.DigestSHA256 = nil
	}
	if len(r.DigestMD5) == 0 {
		r.DigestMD5 = nil
	}
	return &r
}

// credsChanged drops what another replica's change may have altered.
func (d *DB) credsChanged(ch shiftkey.Change) {
	switch ch.Kind {
	case "": // the feed was lost: anything may have changed
		d.creds.InvalidateIf(nil)
	case shiftkey.KindCredential:
		if scope, login, ok := strings.Cut(ch.Name, "\x00"); ok {
			d.creds.Invalidate(loginKey{Cluster: scope, Login: login})
		} else {
			d.creds.InvalidateIf(nil)
		}
	case shiftkey.KindCluster:
		d.creds.InvalidateIf(func(k loginKey) bool { return k.Cluster == ch.Name })
	}
}

// LiveCredentials returns the unexpired credentials of (cluster, login) and
// its salt, from memory while the change feed is current (see credCache),
// else read. The slice is the cache's, which callers only read.
func (d *DB) LiveCredentials(ctx context.Context, cluster, login string, now time.Time) ([]*shiftkey.Credential, shiftkey.LoginSalt, bool, error) {
	k, nowUs := loginKey{Cluster: cluster, Login: login}, now.UnixMicro()
	e, old, gen := d.creds.Get(k, nowUs)
	if e != nil && !d.feed.fresh() {
		e, old = nil, e // its decoded credentials still serve the read
	}
	if e == nil {
		var reuse []*shiftkey.Credential
		if old != nil {
			reuse = old.Creds
		}
		d.credReads.Add(1)
		var err error
		if e, _, err = d.readLogin(ctx, cluster, login, now, reuse); err != nil {
			return nil, shiftkey.LoginSalt{}, false, err
		}
		if !e.Known {
			return nil, shiftkey.LoginSalt{}, false, nil
		}
		d.creds.Put(k, e, gen)
	}
	return d.creds.Live(k, e, nowUs), e.Salt, true, nil
}

// MissedCredentials reads the live ids of (cluster, login) again and
// returns the credentials known lacks, oldest first; the cache takes the
// new read, so that the next logins find them in memory.
func (d *DB) MissedCredentials(ctx context.Context, cluster, login string, known []*shiftkey.Credential, now time.Time) ([]*shiftkey.Credential, error) {
	k := loginKey{Cluster: cluster, Login: login}
	_, _, gen := d.creds.Get(k, now.UnixMicro())
	d.credReads.Add(1)
	e, missed, err := d.readLogin(ctx, cluster, login, now, known)
	if err != nil || !e.Known {
		return nil, err
	}
	d.creds.Put(k, e, gen)
	return missed, nil
}

// credSelect reads whole credentials; the login's salt comes first, so
// that one round trip tells an unknown login (no row), a login without
// live credentials (a row of NULL credential columns) and its credentials.
const credSelect = `SELECT s.salt, s.iterations, c.id, c.db_user, c.db_name, c.db_groups, c.auto_create, c.stored_key,
	c.server_key, c.digest_sha256, c.digest_md5, c.digests, c.principal_arn, c.access_key_id,
	c.principal_id, c.role_arn, c.session_created_at, c.request_id, c.created_at, c.expires_at
	FROM login_salts s LEFT JOIN credentials c ON c.cluster = s.cluster AND c.login_name = s.login_name AND c.expires_at > $3
	WHERE s.cluster = $1 AND s.login_name = $2 ORDER BY c.created_at, c.id`

// idSelect is credSelect's ids only.
const idSelect = `SELECT s.salt, s.iterations, c.id
	FROM login_salts s LEFT JOIN credentials c ON c.cluster = s.cluster AND c.login_name = s.login_name AND c.expires_at > $3
	WHERE s.cluster = $1 AND s.login_name = $2 ORDER BY c.created_at, c.id`

// byIDSelect reads the credentials of ids still live, in no order.
const byIDSelect = `SELECT s.salt, s.iterations, c.id, c.db_user, c.db_name, c.db_groups, c.auto_create, c.stored_key,
	c.server_key, c.digest_sha256, c.digest_md5, c.digests, c.principal_arn, c.access_key_id,
	c.principal_id, c.role_arn, c.session_created_at, c.request_id, c.created_at, c.expires_at
	FROM login_salts s JOIN credentials c ON c.cluster = s.cluster AND c.login_name = s.login_name AND c.expires_at > $3
	WHERE s.cluster = $1 AND s.login_name = $2 AND c.id = ANY($4)`

// readLogin reads the salt and the credentials of (cluster, login) live at
// now. The credentials of old, an earlier read (or answer), are reused
// where still live: a credential never changes once stored, so a refresh
// of a login with thousands of them reads their ids, not their keys,
// groups and sealed digests. missed are the credentials old lacked.
func (d *DB) readLogin(ctx context.Context, cluster, login string, now time.Time, old []*shiftkey.Credential) (e *credEntry, missed []*shiftkey.Credential, err error) {
	if len(old) == 0 {
		salt, known, creds, err := d.readCredentials(ctx, credSelect, cluster, login, now)
		if err != nil {
			return nil, nil, err
		}
		return d.creds.Entry(known, salt, creds, now.UnixMicro()), creds, nil
	}
	rr := gencache.NewReread(old, func(c *shiftkey.Credential) string { return c.ID })
	rows, err := d.pool.Query(ctx, idSelect, cluster, login, now)
	if err != nil {
		return nil, nil, err
	}
	var salt shiftkey.LoginSalt
	known := false
	for rows.Next() {
		if !known {
			known = true
			if err := rows.Scan(&salt.Salt, &salt.Iterations, nil); err != nil {
				rows.Close()
				return nil, nil, err
			}
		}
		if id := rows.RawValues()[2]; id != nil { // text: the bytes of the id, valid until Next; nil: the salt without any live credential
			rr.Add(id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	if !known {
		return d.creds.Entry(false, salt, nil, now.UnixMicro()), nil, nil
	}
	if len(rr.Unknown()) > maxReread {
		return d.readLogin(ctx, cluster, login, now, nil)
	}
	found := map[string]*shiftkey.Credential{}
	if unknown := rr.Unknown(); len(unknown) > 0 {
		_, _, creds, err := d.readCredentials(ctx, byIDSelect, cluster, login, now, unknown)
		if err != nil {
			return nil, nil, err
		}
		for _, c := range creds {
			found[c.ID] = c
		}
	}
	creds, missed, err := rr.Fill(func(id string) (*shiftkey.Credential, bool, error) {
		c, ok := found[id] // absent: deleted since the ids were read
		return c, ok, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return d.creds.Entry(true, salt, creds, now.UnixMicro()), missed, nil
}

// readCredentials runs q (credSelect or byIDSelect) and decodes its rows,
// normalized as asRead does.
func (d *DB) readCredentials(ctx context.Context, q, cluster, login string, now time.Time, more ...any) (salt shiftkey.LoginSalt, known bool, creds []*shiftkey.Credential, err error) {
	err = secretbox.RereadAfterRotation(func() (err error) {
		salt, known, creds, err = d.readCredentialsOnce(ctx, q, cluster, login, now, more...)
		return err
	})
	return salt, known, creds, err
}

func (d *DB) readCredentialsOnce(ctx context.Context, q, cluster, login string, now time.Time, more ...any) (shiftkey.LoginSalt, bool, []*shiftkey.Credential, error) {
	var salt shiftkey.LoginSalt
	rows, err := d.pool.Query(ctx, q, append([]any{cluster, login, now}, more...)...)
	if err != nil {
		return salt, false, nil, err
	}
	defer rows.Close()
	var out []*shiftkey.Credential
	known := false
	for rows.Next() {
		known = true
		var id, dbUser, dbName, principal, accessKey, principalID, roleARN, requestID, digests *string
		var autoCreate *bool
		var created, expires, sessionCreated *time.Time
		c := &shiftkey.Credential{Cluster: cluster, LoginName: login}
		if err := rows.Scan(&salt.Salt, &salt.Iterations, &id, &dbUser, &dbName, &c.DBGroups, &autoCreate, &c.StoredKey,
			&c.ServerKey, &c.DigestSHA256, &c.DigestMD5, &digests, &principal, &accessKey,
			&principalID, &roleARN, &sessionCreated, &requestID, &created, &expires); err != nil {
			return salt, false, nil, err
		}
		if id == nil { // the salt without any live credential
			continue
		}
		c.ID, c.DBUser, c.DBName, c.PrincipalARN, c.RequestID, c.AutoCreate = *id, *dbUser, *dbName, *principal, *requestID, *autoCreate
		if accessKey != nil { // NULL: issued before keys were recorded
			c.AccessKeyID = *accessKey
		}
		// NULL: issued before they were kept (and a user's has no role).
		if principalID != nil {
			c.IssuedTo.PrincipalID = *principalID
		}
		if roleARN != nil {
			c.IssuedTo.RoleARN = *roleARN
		}
		if sessionCreated != nil {
			c.IssuedTo.SessionCreatedAt = sessionCreated.UTC()
		}
		c.CreatedAt, c.ExpiresAt = created.UTC(), expires.UTC()
		if c.DBGroups == nil {
			c.DBGroups = []string{}
		}
		if len(c.DigestSHA256) == 0 {
			c.DigestSHA256 = nil
		}
		if len(c.DigestMD5) == 0 {
			c.DigestMD5 = nil
		}
		if digests != nil {
			if c.DigestSHA256, c.DigestMD5, err = d.openDigests(ctx, d.pool, c.ID, *digests); err != nil {
				return salt, false, nil, err
			}
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return salt, false, nil, err
	}
	return salt, known, out, nil
}
