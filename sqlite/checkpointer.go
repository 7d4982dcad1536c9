package sqlite

import (
	"context"
	"database/sql"
	"log/slog"
	"sync/atomic"
	"time"
)

// Copying the WAL back into the database file (a checkpoint) is the job of
// a goroutine of its own, on a connection of its own: every connection is
// opened with wal_autocheckpoint=0. With SQLite's automatic checkpoints the
// commit that took the WAL past 1,000 pages copied them and fsynced the
// database while every issue queued behind that commit waited: at c=8 and
// c=64 that was most of the p99 (bench/issue/README.md). A PASSIVE
// checkpoint takes no write lock, so the group writer commits on while it
// runs.

const (
	// checkpointEvery is how often the checkpointer runs: a page written
	// many times in that time is copied once, and each checkpoint's fsync
	// of the database delays the writer's fsyncs of the WAL that run beside
	// it (one file system journal), so fewer is better
	// (bench/issue/README.md: 1 s against 250 and 500 ms).
	checkpointEvery = time.Second
	// restartFrames is how big the WAL may grow (16,384 frames of 4 KiB)
	// before the group writer finishes a checkpoint so that the WAL starts
	// over. That step runs in the writer (5–9 ms at c=8 on the benchmark
	// machine, every queued issue waiting), so it is not done every run:
	// at 7,000 issues/s the writer appends about 13,000 frames a second,
	// so 4,096 meant a stall every second, in c=64's p99, and this one
	// every other second (bench/issue/README.md: p99 27–32 against 21–24
	// ms; the -wal file 55 against 110 MB). The WAL stays below this plus
	// what the writer appends in one period.
	restartFrames = 16384
)

type checkpointer struct {
	conn    *sql.Conn
	stmt    *sql.Stmt
	stop    chan struct{}
	stopped chan struct{}
	// frames is how many WAL frames the last checkpoint found, copied is
	// how many of them were in the database file after it (tests).
	frames, copied atomic.Int64
	runs           atomic.Uint64
	// due asks the group writer to finish the copy between two batches.
	due atomic.Bool
	// started and done count checkpoints begun and returned, the group
	// writer's included (groupWriter.checkpointed).
	started, done atomic.Uint64
}

func newCheckpointer(ctx context.Context, db *sql.DB) (*checkpointer, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	stmt, err := conn.PrepareContext(ctx, passiveCheckpoint)
	if err != nil {
		conn.Close()
		return nil, err
	}
	c := &checkpointer{conn: conn, stmt: stmt, stop: make(chan struct{}), stopped: make(chan struct{})}
	go c.loop()
	return c, nil
}

func (c *checkpointer) loop() {
	defer close(c.stopped)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			c.run()
		}
	}
}

func (c *checkpointer) run() {
	frames, copied, err := c.checkpoint(c.stmt)
	if err != nil {
		c.failed(err)
		return
	}
	c.frames.Store(frames)
	c.copied.Store(copied)
	c.runs.Add(1)
	if frames >= restartFrames {
		c.due.Store(true)
	}
}

// passiveCheckpoint copies what it can of the WAL without taking the
// write lock; walCheckpoint runs it (prepared on a connection).
const passiveCheckpoint = `PRAGMA wal_checkpoint(PASSIVE)`

// walCheckpoint runs st, a prepared PRAGMA wal_checkpoint, and returns the
// WAL's frames and how many of them are in the database file after it.
func walCheckpoint(st *sql.Stmt) (frames, copied int64, err error) {
	var busy int64
	err = st.QueryRowContext(context.Background()).Scan(&busy, &frames, &copied)
	return frames, copied, err
}

// checkpoint runs walCheckpoint(st), counted in started and done.
func (c *checkpointer) checkpoint(st *sql.Stmt) (frames, copied int64, err error) {
	c.started.Add(1)
	defer c.done.Add(1)
	return walCheckpoint(st)
}

// failed reports a checkpoint that did not run: the WAL keeps what was not
// copied, and the next run tries again.
func (c *checkpointer) failed(err error) {
	slog.Warn("sqlite checkpoint failed", "err", err)
}

// close stops the checkpointer and releases its connection; the store's
// last connection to close checkpoints what is left.
func (c *checkpointer) close() {
	close(c.stop)
	<-c.stopped
	c.stmt.Close()
	c.conn.Close()
}
