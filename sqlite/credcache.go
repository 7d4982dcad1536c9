package sqlite

import (
	"math"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/gencache"
)

// credCache remembers, per (cluster, login), what LiveCredentials last read,
// so that a login (and a flood of logins with decoy names) costs a map
// lookup instead of two SQLite queries.
//
// It is correct only because this process is the single writer of the
// SQLite file: every write that can change what LiveCredentials returns goes
// through this *DB and drops the entries it affects. A store shared by
// several processes or replicas (a PostgreSQL store) must not copy it; a
// write from elsewhere would go unseen for up to credCacheTTL.
type credCache struct {
	// entries are dropped by writes after they commit; a read that raced
	// with a write is never cached stale (gencache).
	entries *gencache.Map[loginKey, *credEntry]

	clock     func() time.Time // wall clock for entry age; time.Now outside tests
	afterRead func()           // test hook: runs between the query and the store
}

type loginKey struct{ cluster, login string }

// credEntry is one read. It is never modified once stored: callers get its
// slice itself, capped at its length, and treat it and the credentials as
// read-only (pgwire only reads them), as they do the salt bytes.
type credEntry struct {
	known   bool // the login has a salt
	salt    shiftkey.LoginSalt
	creds   []*shiftkey.Credential // unexpired at readNow, ordered by created_at
	expires int64                  // the earliest expiry (unix ms) in creds; MaxInt64 when none
	readNow int64                  // the caller's now (unix ms) the query filtered with
	stored  time.Time              // wall clock when stored
	// stale: a write dropped the entry. It answers no call; its decoded
	// credentials serve the next read of the login (readCredentials).
	stale bool
}

const (
	// credCacheTTL bounds how long an entry is served at all, as a safety
	// net: invalidation on write is what keeps entries correct.
	credCacheTTL = 5 * time.Second
	// credCacheMax bounds memory under a flood of distinct login names;
	// when full the cache is cleared, which is no worse than no cache.
	credCacheMax = 10000
	// saltCacheMax bounds the salts DB.salts keeps, likewise.
	saltCacheMax = 100_000
)

func newCredCache() *credCache {
	return &credCache{entries: gencache.New[loginKey, *credEntry](credCacheMax), clock: time.Now}
}

// get returns the entry for k if it may answer a call at nowMs, else the
// stale or aged entry the read may take credentials from, and the write
// generation to pass to put after a miss.
func (c *credCache) get(k loginKey, nowMs int64) (e, old *credEntry, gen uint64) {
	e, ok, gen := c.entries.Get(k)
	if !ok {
		return nil, nil, gen
	}
	// An entry past the TTL is left for the next put to replace. The query
	// dropped credentials expired at readNow; an earlier now could still
	// see some of them, so it reads the database again.
	if e.stale || c.clock().Sub(e.stored) >= credCacheTTL || nowMs < e.readNow {
		return nil, e, gen
	}
	return e, nil, gen
}

// put stores e for k unless a write happened since gen was read.
func (c *credCache) put(k loginKey, e *credEntry, gen uint64) {
	if c.afterRead != nil {
		c.afterRead()
	}
	e.stored = c.clock()
	c.entries.Put(k, e, gen)
}

// invalidate drops the entry of one login; call it after the write commits
// (or fails), never before, or a reader could cache the state before it.
// What is left of the entry only lends its credentials to the next read.
func (c *credCache) invalidate(cluster, login string) {
	c.entries.Update(loginKey{cluster, login}, staleEntry)
}

// staleEntry is what a write leaves of e.
func staleEntry(e *credEntry) (*credEntry, bool) {
	if e.stale || len(e.creds) == 0 {
		return e, len(e.creds) > 0
	}
	return &credEntry{stale: true, creds: e.creds}, true
}

// added brings the entry of c's login up to date with c, just committed:
// the entry then holds what a read would return. An entry is never
// modified: a new one replaces it, sharing its array when c is the newest
// (appending past the old entry's length disturbs none of its elements),
// so that a login with thousands of credentials is not copied per issue.
func (c *credCache) added(cred *shiftkey.Credential) {
	stored := asRead(cred)
	c.entries.Update(loginKey{cred.Cluster, cred.LoginName}, func(e *credEntry) (*credEntry, bool) {
		if e.stale {
			return e, true
		}
		if !e.known { // a credential without a salt: let a read tell
			return nil, false
		}
		n := len(e.creds)
		i := n
		for i > 0 && e.creds[i-1].CreatedAt.After(stored.CreatedAt) {
			i--
		}
		// A read that began after the commit and stored its entry before
		// this call already holds cred (one created in the same millisecond).
		for j := i; j > 0 && e.creds[j-1].CreatedAt.Equal(stored.CreatedAt); j-- {
			if e.creds[j-1].ID == stored.ID {
				return e, true
			}
		}
		var creds []*shiftkey.Credential
		if i == n {
			creds = append(e.creds, stored)
		} else {
			creds = make([]*shiftkey.Credential, 0, n+1)
			creds = append(append(append(creds, e.creds[:i]...), stored), e.creds[i:]...)
		}
		return &credEntry{known: true, salt: e.salt, creds: creds, expires: min(e.expires, millis(stored.ExpiresAt)),
			readNow: e.readNow, stored: e.stored}, true
	})
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

// invalidateCluster drops every entry of cluster, after the write.
func (c *credCache) invalidateCluster(cluster string) {
	c.entries.UpdateIf(func(k loginKey) bool { return k.cluster == cluster }, staleEntry)
}

// invalidateAll drops every entry, after the write.
func (c *credCache) invalidateAll() {
	c.entries.UpdateIf(nil, staleEntry)
}

// live returns the credentials of e unexpired at nowMs. Until the
// earliest of them expires that is e's slice itself, whatever its length;
// after, a filtered copy, which replaces e in the cache so that the next
// calls need no copy either.
func (c *credCache) live(k loginKey, e *credEntry, nowMs int64) []*shiftkey.Credential {
	if nowMs < e.expires {
		return e.creds[:len(e.creds):len(e.creds)] // an append by the caller copies
	}
	var out []*shiftkey.Credential
	for _, cred := range e.creds {
		if millis(cred.ExpiresAt) > nowMs { // the query's expires_at > now, to the millisecond
			out = append(out, cred)
		}
	}
	f := &credEntry{known: true, salt: e.salt, creds: out, expires: earliestExpiry(out), readNow: max(e.readNow, nowMs), stored: e.stored}
	// Not a write: f answers every call at or after its readNow as e did.
	c.entries.Replace(k, func(cur *credEntry) (*credEntry, bool) { return f, cur == e })
	return out[:len(out):len(out)]
}

// earliestExpiry is the first time (unix ms) one of creds expires.
func earliestExpiry(creds []*shiftkey.Credential) int64 {
	first := int64(math.MaxInt64)
	for _, c := range creds {
		first = min(first, millis(c.ExpiresAt))
	}
	return first
}
