package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
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
}

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
func (f *storeFiles) fsFailed() error {
	if f == nil || f.probe == nil {
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
	if f != nil && f.probe != nil {
		f.probe.close()
	}
}

// committed is what every commit outside the group writer must pass
// before it is acknowledged: the files are the ones opened, and their
// file system has not failed under the commit.
func (f *storeFiles) committed() error {
	if err := f.check(); err != nil {
		return err
	}
	return f.fsFailed()
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

// ExecContext runs a statement in a transaction of its own.
func (db *checkedDB) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
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
	tx, err := db.DB.BeginTx(ctx, opts)
	if err != nil {
		return nil, lockedOut(err)
	}
	return &checkedTx{Tx: tx, files: db.files}, nil
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

type checkedTx struct {
	*sql.Tx
	files *storeFiles
}

// Commit commits, then fails if the commit went to files no path reaches.
func (tx *checkedTx) Commit() error {
	if err := tx.Tx.Commit(); err != nil {
		return lockedOut(err)
	}
	return tx.files.committed()
}
