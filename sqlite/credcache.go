package sqlite

import (
	"context"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/gencache"
)

// credCache remembers, per (cluster, login), what LiveCredentials last read
// (gencache.Logins), so that a login (and a flood of logins with decoy
// names) costs a map lookup instead of two SQLite queries. Times are in
// milliseconds, the precision the store keeps.
//
// It is correct with no change feed because this process is the file's
// only writer of credentials: every write that can change what
// LiveCredentials returns goes through this *DB and drops the entries it
// affects, except the revocations of `shiftkey credentials revoke`, run
// as its own process, which CatchUp notices before the next login is
// answered. The PostgreSQL store shares the same cache but also listens to
// the other replicas' writes.
type credCache = gencache.Logins[loginKey, shiftkey.LoginSalt, *shiftkey.Credential]

// credEntry is one read of a login.
type credEntry = gencache.Entry[shiftkey.LoginSalt, *shiftkey.Credential]

type loginKey = gencache.LoginKey

// saltCacheMax bounds the salts DB.salts keeps, as gencache.MaxLogins
// bounds the logins.
const saltCacheMax = 100_000

func newCredCache() *credCache {
	return gencache.NewLogins[loginKey, shiftkey.LoginSalt](gencache.MaxLogins, gencache.TTL, credTimes)
}

func credTimes(c *shiftkey.Credential) (string, int64, int64) {
	return c.ID, millis(c.CreatedAt), millis(c.ExpiresAt)
}

// added brings the entry of c's login up to date with c, just committed.
func added(cache *credCache, c *shiftkey.Credential) {
	cache.Added(loginKey{Cluster: c.Cluster, Login: c.LoginName}, asRead(c))
}

// asRead is a copy of c as reading it back from the store gives it:
// times to the millisecond in UTC, groups never nil, empty digests nil.
func asRead(c *shiftkey.Credential) *shiftkey.Credential {
	r := *c
	r.DBGroups = append([]string{}, c.DBGroups...)
	r.CreatedAt, r.ExpiresAt = fromMillis(millis(c.CreatedAt)), fromMillis(millis(c.ExpiresAt))
	if len(r.DigestSHA256) == 0 {
		r.DigestSHA256 = nil
	}
	if len(r.DigestMD5) == 0 {
		r.DigestMD5 = nil
	}
	return &r
}

// MissedCredentials returns nil: this process is the file's only writer
// of credentials (other processes only revoke them), so LiveCredentials
// never lacks one.
func (d *DB) MissedCredentials(context.Context, string, string, []*shiftkey.Credential, time.Time) ([]*shiftkey.Credential, error) {
	return nil, nil
}
