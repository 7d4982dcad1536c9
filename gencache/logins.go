package gencache

import (
	"math"
	"time"
)

// Logins remembers, per login key K, what a store's LiveCredentials last
// read: whether the login exists, its salt S and its unexpired
// credentials C, oldest first. A login then costs a map lookup, however
// many credentials it has, instead of queries and decoding.
//
// The store keeps it correct: every write that changes what a read would
// return drops the entries it affects after it commits (Invalidate,
// InvalidateIf) or brings them up to date (Added); a read that raced with
// a write is never stored (the Map's generations). A store whose writes
// can also come from other processes must learn of each (a change feed)
// and must not serve entries while it might be missing some.
//
// Times are int64 in the store's own unit (milliseconds, microseconds),
// the precision it stores them with, so that the cache filters expiry
// exactly as its query does.
type Logins[K comparable, S, C any] struct {
	m     *Map[K, *Entry[S, C]]
	times func(C) (id string, created, expires int64)
	ttl   time.Duration

	// Clock is the wall clock for entry age; time.Now outside tests.
	Clock func() time.Time
	// AfterRead is a test hook: it runs in Put before the entry is stored.
	AfterRead func()
}

// LoginKey names one login name of one cluster: both stores key their
// login and salt caches by it.
type LoginKey struct{ Cluster, Login string }

const (
	// TTL bounds how long a store serves a login's entry at all, as a
	// safety net: invalidation on write is what keeps entries correct.
	TTL = 5 * time.Second
	// MaxLogins bounds a store's login cache under a flood of distinct
	// login names; when full it is cleared, which is no worse than none.
	MaxLogins = 10000
)

// Entry is one read. It is never modified once stored: callers get its
// slice itself, capped at its length, and treat it and the credentials as
// read-only, as they do the salt.
type Entry[S, C any] struct {
	Known bool // the login exists (has a salt)
	Salt  S
	Creds []C // unexpired at ReadNow, oldest first

	// ReadNow is the caller's now the read filtered expiry with.
	ReadNow int64

	expires int64     // the earliest expiry in Creds; MaxInt64 when none
	stored  time.Time // wall clock when stored
	// stale: a write dropped the entry. It answers no call; its decoded
	// credentials serve the next read of the login (see Get's old).
	stale bool
}

// NewLogins makes a cache of at most max logins whose entries answer for
// at most ttl, a safety net (invalidation is what keeps them correct).
// times tells a credential's id, creation and expiry.
func NewLogins[K comparable, S, C any](max int, ttl time.Duration, times func(C) (id string, created, expires int64)) *Logins[K, S, C] {
	return &Logins[K, S, C]{m: New[K, *Entry[S, C]](max), times: times, ttl: ttl, Clock: time.Now}
}

// Entry makes the entry of a read at now; creds are oldest first.
func (l *Logins[K, S, C]) Entry(known bool, salt S, creds []C, now int64) *Entry[S, C] {
	return &Entry[S, C]{Known: known, Salt: salt, Creds: creds, ReadNow: now, expires: l.earliestExpiry(creds)}
}

// Get returns the entry for k if it may answer a call at now, else the
// stale or aged entry (old) a read may take decoded credentials from, and
// the write generation to pass to Put after a miss.
func (l *Logins[K, S, C]) Get(k K, now int64) (e, old *Entry[S, C], gen uint64) {
	e, ok, gen := l.m.Get(k)
	if !ok {
		return nil, nil, gen
	}
	// An entry past the TTL is left for the next Put to replace. The read
	// dropped credentials expired at ReadNow; an earlier now could still
	// see some of them, so it reads again.
	if e.stale || l.Clock().Sub(e.stored) >= l.ttl || now < e.ReadNow {
		return nil, e, gen
	}
	return e, nil, gen
}

// Put stores e for k unless a write happened since gen was read.
func (l *Logins[K, S, C]) Put(k K, e *Entry[S, C], gen uint64) {
	if l.AfterRead != nil {
		l.AfterRead()
	}
	e.stored = l.Clock()
	l.m.Put(k, e, gen)
}

// Invalidate drops the entry of k; call it after the write commits (or
// fails), never before, or a reader could cache the state before it.
// What is left of the entry only lends its credentials to the next read.
func (l *Logins[K, S, C]) Invalidate(k K) {
	l.m.Update(k, staleEntry[S, C])
}

// InvalidateIf is Invalidate for every key match says so (nil: all).
func (l *Logins[K, S, C]) InvalidateIf(match func(K) bool) {
	l.m.UpdateIf(match, staleEntry[S, C])
}

// Forget drops every entry, stale ones too, as a restart does.
func (l *Logins[K, S, C]) Forget() { l.m.DropIf(nil) }

// Len is the number of entries, stale ones included.
func (l *Logins[K, S, C]) Len() int { return l.m.Len() }

// staleEntry is what a write leaves of e.
func staleEntry[S, C any](e *Entry[S, C]) (*Entry[S, C], bool) {
	if e.stale || len(e.Creds) == 0 {
		return e, len(e.Creds) > 0
	}
	return &Entry[S, C]{stale: true, Creds: e.Creds}, true
}

// Added brings the entry of k up to date with c, just committed, as a read
// returns it: the entry then holds what a read would. An entry is never
// modified: a new one replaces it, sharing its array when c is the newest
// (appending past the old entry's length disturbs none of its elements),
// so that a login with thousands of credentials is not copied per issue.
func (l *Logins[K, S, C]) Added(k K, c C) {
	id, created, expires := l.times(c)
	l.m.Update(k, func(e *Entry[S, C]) (*Entry[S, C], bool) {
		if e.stale {
			return e, true
		}
		if !e.Known { // a credential without a salt: let a read tell
			return nil, false
		}
		n := len(e.Creds)
		i := n
		for i > 0 && l.created(e.Creds[i-1]) > created {
			i--
		}
		// A read that began after the commit and stored its entry before
		// this call already holds c (one created at the same instant).
		for j := i; j > 0 && l.created(e.Creds[j-1]) == created; j-- {
			if cid, _, _ := l.times(e.Creds[j-1]); cid == id {
				return e, true
			}
		}
		var creds []C
		if i == n {
			creds = append(e.Creds, c)
		} else {
			creds = make([]C, 0, n+1)
			creds = append(append(append(creds, e.Creds[:i]...), c), e.Creds[i:]...)
		}
		return &Entry[S, C]{Known: true, Salt: e.Salt, Creds: creds, ReadNow: e.ReadNow,
			expires: min(e.expires, expires), stored: e.stored}, true
	})
}

func (l *Logins[K, S, C]) created(c C) int64 {
	_, t, _ := l.times(c)
	return t
}

// Live returns the credentials of e unexpired at now. Until the earliest
// of them expires that is e's slice itself, whatever its length; after, a
// filtered copy, which replaces e in the cache so that the next calls
// need no copy either.
func (l *Logins[K, S, C]) Live(k K, e *Entry[S, C], now int64) []C {
	if now < e.expires {
		return e.Creds[:len(e.Creds):len(e.Creds)] // an append by the caller copies
	}
	var out []C
	for _, c := range e.Creds {
		if _, _, exp := l.times(c); exp > now { // the query's expires_at > now
			out = append(out, c)
		}
	}
	f := &Entry[S, C]{Known: true, Salt: e.Salt, Creds: out, ReadNow: max(e.ReadNow, now),
		expires: l.earliestExpiry(out), stored: e.stored}
	// Not a write: f answers every call at or after its ReadNow as e did.
	l.m.Replace(k, func(cur *Entry[S, C]) (*Entry[S, C], bool) { return f, cur == e })
	return out[:len(out):len(out)]
}

// earliestExpiry is the first expiry among creds.
func (l *Logins[K, S, C]) earliestExpiry(creds []C) int64 {
	first := int64(math.MaxInt64)
	for _, c := range creds {
		_, _, exp := l.times(c)
		first = min(first, exp)
	}
	return first
}

// Reread lines a fresh read of a login's live ids up against the
// credentials an earlier read decoded, so that a refresh decodes only the
// credentials it has not seen: Add each id in the order read, then Fill.
type Reread[C comparable] struct {
	known   map[string]C
	creds   []C      // per id added, the known credential, or the zero C
	unknown []string // the ids of the zero places, in order
}

// NewReread starts a re-read against known; id names a credential.
func NewReread[C comparable](known []C, id func(C) string) *Reread[C] {
	r := &Reread[C]{known: make(map[string]C, len(known)), creds: make([]C, 0, len(known))}
	for _, c := range known {
		r.known[id(c)] = c
	}
	return r
}

// Add takes the next id read; its bytes are copied only when unknown.
func (r *Reread[C]) Add(id []byte) {
	c, ok := r.known[string(id)]
	if !ok {
		r.unknown = append(r.unknown, string(id))
	}
	r.creds = append(r.creds, c)
}

// Unknown are the ids added that known lacked, in order.
func (r *Reread[C]) Unknown() []string { return r.unknown }

// Fill returns the credentials in the order added, looking up each
// unknown one (ok false: deleted since the ids were read, left out), and
// which of them were unknown.
func (r *Reread[C]) Fill(lookup func(id string) (c C, ok bool, err error)) (creds, missed []C, err error) {
	var zero C
	unknown := r.unknown
	out := r.creds[:0]
	for _, c := range r.creds {
		if c == zero {
			var ok bool
			c, ok, err = lookup(unknown[0])
			unknown = unknown[1:]
			if err != nil {
				return nil, nil, err
			}
			if !ok {
				continue
			}
			missed = append(missed, c)
		}
		out = append(out, c)
	}
	return out, missed, nil
}
