package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"time"
)

// outsideWrites tells whether another process (`shiftkey credentials
// revoke` beside the server) has revoked credentials or ended STS sessions
// in the file since it last looked, so that what this process answers
// from memory (logins, cached sessions) never outlives a revocation the
// revoking command has returned from.
//
// A check first asks whether anything at all was committed since the
// last one: on Linux by the WAL-index header in the -shm file, which
// every commit rewrites (walindex_linux.go), elsewhere by PRAGMA
// data_version on a connection of its own, which changes when any other
// connection commits. That is the common case, and no table is read.
// When something was, the revocation tables' summary (fingerprintQuery)
// tells whether it was a revocation: the server's own commits (issues,
// grants) count too, and must not empty the caches.
type outsideWrites struct {
	mu          sync.Mutex // one check at a time, on conn
	conn        *sql.Conn
	shm         *walIndexHeader // released at the store's close (release)
	useShm      bool            // shm is mapped; else ask version
	version     *sql.Stmt       // PRAGMA data_version
	fingerprint *sql.Stmt       // the summary
	// lastMark is what the last check saw; ok false forces the next one
	// to read the summary (after an error).
	lastMark changeMark
	ok       bool
	last     [2]string // the summary, read after lastMark
	closed   bool

	fns []func() // OnRevoked
}

// changeMark is what changes when anything is committed to the file: the
// WAL-index header, or data_version in its first two words.
type changeMark [walIndexHeaderWords]uint32

const walIndexHeaderWords = 12

// fingerprintQuery summarises the revocation tables in one read, in two
// index look-ups whatever their size: each table's newest row (its rowid
// and key). Revocations and ended sessions are only inserted (a revocation
// marked terminate later, TerminateRevoked, is moved to the largest rowid,
// which reads as an insert), each under
// a key of its own (revoking moves a credential out of credentials; a
// session ends once), or deleted once expired; SQLite gives an inserted
// row the largest rowid yet, so every insert changes the newest row. A
// delete of the newest row changes it too, which costs only a needless
// drop of the caches. (count(*) and max(revoked_at), as the poll used,
// scan both tables: 5 ms at 10,000 revocations, paid by the login after
// each of the server's own commits; BenchmarkCatchUpSummary.)
const fingerprintQuery = `SELECT coalesce((SELECT rowid || ' ' || id FROM credential_revocations ORDER BY rowid DESC LIMIT 1), ''),
	coalesce((SELECT rowid || ' ' || access_key_id FROM ended_sessions ORDER BY rowid DESC LIMIT 1), '')`

func newOutsideWrites(ctx context.Context, db *sql.DB, path string) (*outsideWrites, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	// Mapped while conn is open: the -shm file exists, and stays.
	o := &outsideWrites{conn: conn, shm: openWALIndexHeader(path)}
	o.useShm = o.shm != nil && o.shm.ok()
	if o.version, err = conn.PrepareContext(ctx, `PRAGMA data_version`); err == nil {
		o.fingerprint, err = conn.PrepareContext(ctx, fingerprintQuery)
	}
	if err == nil {
		// The baseline, before this process caches anything.
		o.check()
		if !o.ok {
			err = errors.New("the revocation tables could not be read")
		}
	}
	if err != nil {
		o.close()
		o.release() // the store is closed after this failure
		return nil, err
	}
	return o, nil
}

// mark is what changes with every commit to the file.
func (o *outsideWrites) mark() (changeMark, error) {
	if o.useShm {
		return o.shm.read(), nil
	}
	var v int64
	// Not the caller's context: a login given up half-way must not leave
	// this connection interrupted.
	err := o.version.QueryRowContext(context.Background()).Scan(&v)
	return changeMark{uint32(v), uint32(v >> 32)}, err
}

// check reports whether another connection revoked or ended something
// since the last check (or whether it could not tell: then the caches
// must go too). The caller holds mu.
func (o *outsideWrites) check() bool {
	if o.closed {
		return true
	}
	// The mark is read before the summary: a commit between the two is in
	// the summary, and changes the mark the next check compares.
	m, err := o.mark()
	if err == nil && o.ok && m == o.lastMark {
		return false
	}
	var now [2]string
	if err == nil {
		err = o.fingerprint.QueryRowContext(context.Background()).Scan(&now[0], &now[1])
	}
	if err != nil {
		o.ok = false
		return true
	}
	changed := now != o.last
	o.lastMark, o.last, o.ok = m, now, true
	return changed
}

func (o *outsideWrites) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	for _, st := range []*sql.Stmt{o.version, o.fingerprint} {
		if st != nil {
			st.Close()
		}
	}
	o.conn.Close()
}

// release lets go of the WAL-index header once the store's connections
// have all closed (walIndexes says why not before).
func (o *outsideWrites) release() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.shm != nil {
		o.shm.release()
		o.shm, o.useShm = nil, false
	}
}

// CatchUp brings what this process answers from memory up to date with the
// revocations and session ends other processes committed before the call:
// when there are any, it drops the cached logins and calls the OnRevoked
// callbacks, before it returns. It reads the file only when something was
// committed since the last call. LiveCredentials calls it; a cache of
// sessions over this store calls it before answering one
// (shiftkey.OutsideRevocations).
func (d *DB) CatchUp() {
	o := d.outside
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.check() {
		return
	}
	d.cache.InvalidateIf(nil)
	for _, fn := range o.fns {
		fn()
	}
}

// OnRevoked registers fn, called (by CatchUp, with its lock held: fn must
// not call it) when another process has revoked credentials or ended STS
// sessions: fn drops what its caller caches of them.
func (d *DB) OnRevoked(fn func()) {
	d.outside.mu.Lock()
	defer d.outside.mu.Unlock()
	d.outside.fns = append(d.outside.fns, fn)
}

// WatchRevocations calls CatchUp every every until ctx is done: the
// sessions open with a credential that another process revoked with
// --terminate end though no login of its name comes (OnRevoked's
// callbacks end them).
func (d *DB) WatchRevocations(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.CatchUp()
		}
	}
}
