package sqlite

import (
	"database/sql"
	"sync/atomic"
	"time"
)

// GroupCommits is how many transactions the group writer has committed.
func (d *DB) GroupCommits() uint64 { return d.writer.commits.Load() }

// QueuedWrites is how many writes wait for the group writer.
func (d *DB) QueuedWrites() int { return d.writer.q.Queued() }

// TakenWrites is how many writes the group writer has taken from its FIFO.
func (d *DB) TakenWrites() uint64 { return d.writer.q.Taken() }

// ForgetCredentials empties the login cache, stale entries too, as a
// restart does.
func (d *DB) ForgetCredentials() { d.cache.Forget() }

// Checkpoints is what the store's checkpointer last found: the WAL's
// frames, how many of them were in the database file after its run, and
// how many runs it has made.
func (d *DB) Checkpoints() (frames, copied int64, runs uint64) {
	c := d.checkpoints
	return c.frames.Load(), c.copied.Load(), c.runs.Load()
}

// SQL is the store's connection pool.
func (d *DB) SQL() *sql.DB { return d.db.DB }

// ComingWrites is how many writes have been announced to the group writer
// and not yet submitted.
func (d *DB) ComingWrites() int { return d.writer.q.Coming() }

// SetWriteWait sets how long an issue's write may wait for the group
// writer (writeWait); call it before the store is used.
func (d *DB) SetWriteWait(wait time.Duration) { d.writer.wait = wait }

// FailFileSystem makes the writer's question whether the store's file
// system has failed (storeFiles.fsFailed) answer err, and returns how
// many times it has been asked since.
func (d *DB) FailFileSystem(err error) (asked func() int64) {
	p := &fakeProbe{err: err}
	if old := d.writer.files.probe; old != nil {
		old.close()
	}
	d.writer.files.probe = p
	return p.asked.Load
}

type fakeProbe struct {
	err   error
	asked atomic.Int64
}

func (p *fakeProbe) failed() error { p.asked.Add(1); return p.err }
func (p *fakeProbe) close()        {}

// Checkpoint runs the store's checkpointer once, as its ticker does.
func (d *DB) Checkpoint() { d.checkpoints.run() }

// SetBeforeKeyFile makes d call f each time before it asks the store for
// the file of a key it does not hold; call it before the store is used.
func SetBeforeKeyFile(d *DB, f func()) { d.beforeKeyFile = f }

// SetAfterKeyFile makes d call f each time the store has answered the
// file of a key d does not hold, before d reads the file; call it before
// the store is used.
func SetAfterKeyFile(d *DB, f func()) { d.afterKeyFile = f }

// SetAfterReseal makes RotateKeyFile call f once it has resealed the store,
// before it swaps the key files, for the rest of the test (which must not
// run in parallel with others that rotate).
func SetAfterReseal(t interface{ Cleanup(func()) }, f func()) {
	afterReseal = f
	t.Cleanup(func() { afterReseal = nil })
}
