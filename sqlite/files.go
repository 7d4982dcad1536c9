package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/shiftkey/shiftkey"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// storeFiles are the database file and its WAL as the store opened them.
// An operator who deletes them, or moves another file over them, while
// the store runs leaves its connections writing to files no path reaches:
// what they commit is gone at the next start. check tells, after each
// commit (the group writer's batches, and every other write through
// checkedDB), so that nothing written there is acknowledged.
type storeFiles struct {
	path     string
	db, wal  os.FileInfo // nil: not there at open, not checked
	reported atomic.Bool
	// probe asks whether the file system has failed (fsFailed); nil
	// where it cannot.
	probe interface {
		failed() error
		close()
	}
	probeFailure atomic.Bool // logged
	// mu orders the commits' checks with close: database/sql's Close
	// does not wait for a write's check, which runs once its statement
	// is done, and one after close would ask the probe's closed
	// descriptor (by then maybe another file's) and find the WAL the
	// close removed. closed: checks fail with errStoreClosed.
	mu     sync.RWMutex
	closed bool
}

// errStoreClosed is what a write's check answers once the store is
// closed: whether its commit reached the disk is no longer asked.
var errStoreClosed = errors.New("sqlite store: closed while the write was being acknowledged")

func openedFiles(path string) *storeFiles {
	f := &storeFiles{path: path}
	f.db, _ = os.Stat(path)
	f.wal, _ = os.Stat(path + "-wal")
	if f.wal != nil {
		if p := openFSProbe(path + "-wal"); p != nil {
			f.probe = p
		}
	}
	return f
}

// fsFailed fails when the file system of the store has failed (gone
// read-only after an error): what was committed just before may not be
// on disk although its fsync returned 0 (fsprobe_linux.go). A nil f
// passes, as in check.
func (f *storeFiles) fsFailed() error { return f.whileOpen(f.probeFailed) }

// whileOpen runs a check of the files with f.mu read-locked, so that
// close waits for it: errStoreClosed once closed. A nil f passes.
func (f *storeFiles) whileOpen(check func() error) error {
	if f == nil {
		return nil
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return errStoreClosed
	}
	return check()
}

// probeFailed is fsFailed, f.mu held.
func (f *storeFiles) probeFailed() error {
	if f.probe == nil {
		return nil
	}
	err := f.probe.failed()
	if err == nil {
		return nil
	}
	if !f.probeFailure.Swap(true) {
		slog.Error("sqlite store file system failed (read-only or shut down): writes fail while it stays so; repair it, then restart the store", "file", f.path, "err", err)
	}
	return fmt.Errorf("sqlite store: the file system of %s has failed (%w): what was committed last may not be on disk, and no write is acknowledged", f.path, err)
}

func (f *storeFiles) close() {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	if f.probe != nil {
		f.probe.close()
	}
}

// committed is what every commit outside the group writer must pass
// before it is acknowledged: the files are the ones opened, and their
// file system has not failed under the commit.
func (f *storeFiles) committed() error {
	return f.whileOpen(func() error {
		if err := f.check(); err != nil {
			return err
		}
		return f.probeFailed()
	})
}

// check fails when the path no longer names the files opened. A nil f
// (the writes of Open, before the files are known) passes.
func (f *storeFiles) check() error {
	if f == nil {
		return nil
	}
	for _, o := range []struct {
		name   string
		opened os.FileInfo
	}{{f.path, f.db}, {f.path + "-wal", f.wal}} {
		if o.opened == nil {
			continue
		}
		now, err := os.Stat(o.name)
		if err == nil && os.SameFile(now, o.opened) {
			continue
		}
		err = fmt.Errorf("sqlite store: %s was deleted or replaced while the store had it open: writes no longer reach it, so none is acknowledged; restore it from a backup (what this process wrote since is in its open file) and restart", o.name)
		if !f.reported.Swap(true) {
			slog.Error("sqlite store file deleted or replaced under the running store: every write fails until a restart", "file", o.name)
		}
		return err
	}
	return nil
}

// checkedDB is the store's database. What it commits outside the group
// writer (a statement run on its own, a transaction's Commit) reports
// success only when files.check passes: an IAM write or a revocation
// acknowledged into a deleted file would be undone by the next start.
type checkedDB struct {
	*sql.DB
	// files is set by Open once the store holds its files open, before
	// any other goroutine writes.
	files *storeFiles
}

// declaringTx is the context key of the Declaring run a call belongs to.
type declaringTx struct{}

// declaringRun is a Declaring run's connection, on which the store's calls
// made with its context run. Its transaction begins at its first write
// (BEGIN IMMEDIATE: the write lock, waited for up to busy_timeout), not
// before: serve's reload takes its API's calls' lock inside the run, and
// a call that holds that lock may wait for the write lock itself (an
// issue's commit). Each write runs in a savepoint of its own, so that one
// that fails (a duplicate the caller expects) fails only itself.
type declaringRun struct {
	conn  *sql.Conn
	begun bool
}

func (r *declaringRun) begin(ctx context.Context) error {
	if r.begun {
		return nil
	}
	if _, err := r.conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return lockedOut(err)
	}
	r.begun = true
	return nil
}

// joined is the Declaring run ctx belongs to, nil outside one.
func joined(ctx context.Context) *declaringRun {
	r, _ := ctx.Value(declaringTx{}).(*declaringRun)
	return r
}

// savepoints names the savepoints of Declaring runs.
var savepoints atomic.Uint64

// savepoint begins r's transaction if it has not, starts a savepoint in
// it and returns its name.
func (r *declaringRun) savepoint(ctx context.Context) (string, error) {
	if err := r.begin(ctx); err != nil {
		return "", err
	}
	name := "s" + strconv.FormatUint(savepoints.Add(1), 10)
	_, err := r.conn.ExecContext(ctx, "SAVEPOINT "+name)
	return name, lockedOut(err)
}

// endSavepoint releases savepoint name when err is nil, and undoes it
// otherwise; it returns err or the release's.
func (r *declaringRun) endSavepoint(ctx context.Context, name string, err error) error {
	if err != nil {
		r.conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK TO "+name+"; RELEASE "+name)
		return err
	}
	_, err = r.conn.ExecContext(ctx, "RELEASE "+name)
	return lockedOut(err)
}

// declaring runs fn as a Declaring run (declaringRun): its writes commit
// (checked) when fn returns nil, and are rolled back otherwise.
func (db *checkedDB) declaring(ctx context.Context, fn func(context.Context) error) (err error) {
	conn, err := db.DB.Conn(ctx)
	if err != nil {
		return lockedOut(err)
	}
	defer conn.Close()
	r := &declaringRun{conn: conn}
	defer func() {
		if r.begun {
			// fn failed or panicked, or the commit failed: undone. A
			// connection left in a transaction is not put back.
			if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
				conn.Raw(func(any) error { return driver.ErrBadConn })
			}
		}
	}()
	if err := fn(context.WithValue(ctx, declaringTx{}, r)); err != nil || !r.begun {
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return lockedOut(err)
	}
	r.begun = false
	return db.files.committed()
}

// ExecContext runs a statement in a transaction of its own (in a
// Declaring run, in a savepoint of its transaction).
func (db *checkedDB) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if r := joined(ctx); r != nil {
		sp, err := r.savepoint(ctx)
		if err != nil {
			return nil, err
		}
		res, err := r.conn.ExecContext(ctx, q, args...)
		if err = r.endSavepoint(ctx, sp, lockedOut(err)); err != nil {
			return nil, err
		}
		return res, nil
	}
	res, err := db.DB.ExecContext(ctx, q, args...)
	if err == nil {
		err = db.files.committed()
	}
	if err != nil {
		return nil, lockedOut(err)
	}
	return res, nil
}

// BeginTx starts a transaction whose Commit is checked. Transactions
// take the write lock as they begin (_txlock=immediate): here is where
// one waits for another process's.
func (db *checkedDB) BeginTx(ctx context.Context, opts *sql.TxOptions) (*checkedTx, error) {
	if r := joined(ctx); r != nil {
		// A savepoint: its Commit releases it, its Rollback undoes it.
		sp, err := r.savepoint(ctx)
		if err != nil {
			return nil, err
		}
		return &checkedTx{sqlConn: r.conn, files: db.files, run: r, ctx: ctx, savepoint: sp}, nil
	}
	tx, err := db.DB.BeginTx(ctx, opts)
	if err != nil {
		return nil, lockedOut(err)
	}
	return &checkedTx{sqlConn: tx, tx: tx, files: db.files}, nil
}

// lockedOut is err, marked shiftkey.ErrStoreUnavailable when it is
// SQLITE_BUSY: another connection (an operator's sqlite3 shell in a
// transaction, a long revocation in another process) held the write lock
// past busy_timeout, and nothing was written. The API answers it
// ServiceUnavailable, which clients retry, not InternalFailure. Every
// write of the store meets it here or in the group writer, which uses it
// too.
func lockedOut(err error) error {
	var se *sqlite.Error
	if err == nil || errors.Is(err, shiftkey.ErrStoreUnavailable) || !errors.As(err, &se) || se.Code()&0xff != sqlite3.SQLITE_BUSY {
		return err
	}
	return fmt.Errorf("%w: another connection held the write lock past busy_timeout: %w", shiftkey.ErrStoreUnavailable, err)
}

// QueryContext and QueryRowContext read on the connection of the
// Declaring run ctx belongs to, if any: it sees its own writes.
func (db *checkedDB) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if r := joined(ctx); r != nil {
		return r.conn.QueryContext(ctx, q, args...)
	}
	return db.DB.QueryContext(ctx, q, args...)
}

func (db *checkedDB) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if r := joined(ctx); r != nil {
		return r.conn.QueryRowContext(ctx, q, args...)
	}
	return db.DB.QueryRowContext(ctx, q, args...)
}

// sqlConn is a *sql.Tx or a Declaring run's *sql.Conn.
type sqlConn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

type checkedTx struct {
	sqlConn
	tx    *sql.Tx // nil for a savepoint
	files *storeFiles
	// run and savepoint, when set, are the Declaring run (ctx's) and the
	// savepoint of its transaction that this is.
	run       *declaringRun
	savepoint string
	ctx       context.Context
	ended     bool
}

// Rollback ends the transaction, or undoes its savepoint; after Commit it
// does nothing.
func (tx *checkedTx) Rollback() error {
	if tx.run == nil {
		return tx.tx.Rollback()
	}
	if tx.ended {
		return sql.ErrTxDone
	}
	tx.ended = true
	return tx.run.endSavepoint(tx.ctx, tx.savepoint, sql.ErrTxDone)
}

// Commit commits, then fails if the commit went to files no path reaches
// (a savepoint: releases it; the Declaring run's commit is checked).
func (tx *checkedTx) Commit() error {
	if tx.run != nil {
		if tx.ended {
			return sql.ErrTxDone
		}
		tx.ended = true
		return tx.run.endSavepoint(tx.ctx, tx.savepoint, nil)
	}
	if err := tx.tx.Commit(); err != nil {
		return lockedOut(err)
	}
	return tx.files.committed()
}
