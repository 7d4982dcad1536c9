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
	// checkpointGap is the least time between two checkpoints while writes
	// go on: a page written many times within it is copied once, and each
	// checkpoint's fsync of the database delays the writer's fsyncs of the
	// WAL that run beside it (one file system journal), so fewer is better
	// (bench/issue/README.md: 1 s against 250 and 500 ms).
	checkpointGap = time.Second
	// restartFrames is how big the WAL may grow (4,096 frames of 4 KiB)
	// before the group writer finishes a checkpoint so that the WAL starts
	// over. That step runs in the writer (2–6 ms at c=8 on the benchmark
	// machine, every queued issue waiting), so it is not done every run.
	// The WAL stays below this plus what the writer appends in one gap.
	restartFrames = 4096
	// checkpointIdle is how often the checkpointer runs when no commit of
	// the group writer asked it to: the store's other writes (purges,
	// identities, grants) are copied back within that time.
	checkpointIdle = time.Second
)

type checkpointer struct {
	conn    *sql.Conn
	stmt    *sql.Stmt
	kick    chan struct{}
	stop    chan struct{}
	stopped chan struct{}
	// frames is how many WAL frames the last checkpoint found, copied is
	// how many of them were in the database file after it (tests).
	frames, copied atomic.Int64
	runs           atomic.Uint64
	// due asks the group writer to finish the copy between two batches.
	due atomic.Bool
}

func newCheckpointer(ctx context.Context, db *sql.DB) (*checkpointer, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	stmt, err := conn.PrepareContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
	if err != nil {
		conn.Close()
		return nil, err
	}
	c := &checkpointer{conn: conn, stmt: stmt, kick: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
	go c.loop()
	return c, nil
}

// wake asks for a checkpoint soon; it never blocks the writer.
func (c *checkpointer) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

func (c *checkpointer) loop() {
	defer close(c.stopped)
	idle := time.NewTimer(checkpointIdle)
	gap := time.NewTimer(0)
	<-gap.C
	for {
		select {
		case <-c.stop:
			return
		case <-c.kick:
		case <-idle.C:
		}
		c.run()
		idle.Reset(checkpointIdle)
		gap.Reset(checkpointGap)
		select {
		case <-c.stop:
			return
		case <-gap.C:
		}
	}
}

func (c *checkpointer) run() {
	var busy, frames, copied int64
	if err := c.stmt.QueryRowContext(context.Background()).Scan(&busy, &frames, &copied); err != nil {
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
