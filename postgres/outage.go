package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shiftkey/shiftkey"
)

// classify wraps err with shiftkey.ErrStoreUnavailable when it says the
// store could not be reached rather than that a statement failed: the
// server is down (a refused connection), starting up, shutting down or
// out of connection slots, a standby that refuses writes (a failover
// under way), the connection broke mid-call, the server gave up waiting (its lock_timeout or statement_timeout, on a lock held
// on a table: the store did not answer in time), or it rolled the
// transaction back for a conflict with another (40001, 40P01). The API
// answers those ServiceUnavailable, which clients retry; anything else (a
// constraint, bad SQL) stays what it was. What a context ended is left
// alone: the caller's deadline has its own answer.
func classify(err error) error {
	if err == nil || errors.Is(err, shiftkey.ErrStoreUnavailable) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if unreachable(err) {
		return fmt.Errorf("%w: %w", shiftkey.ErrStoreUnavailable, err)
	}
	return err
}

func unreachable(err error) bool {
	if pe, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection_exception
			pe.Code == "57P01", // admin_shutdown
			pe.Code == "57P02", // crash_shutdown
			pe.Code == "57P03", // cannot_connect_now: starting up, in recovery, shutting down
			pe.Code == "53300", // too_many_connections
			// The server's own deadlines, a guard set on many managed
			// servers: a statement that waited out lock_timeout
			// (lock_not_available) or statement_timeout (query_canceled)
			// failed for the store's state, not for what it asked.
			pe.Code == "55P03", pe.Code == "57014",
			// A transaction the server rolled back for another one's
			// sake (serialization_failure, deadlock_detected): nothing
			// of it committed, and sent again it may.
			pe.Code == "40001", pe.Code == "40P01",
			// A write on a hot standby: what the store's address reaches
			// for a while as the store fails over (a demoted primary, a
			// name that still points to a reader).
			pe.Code == "25006": // read_only_sql_transaction
			return true
		}
		// Any other error the server sent is about the statement.
		return false
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return true
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

// storePool is the store's connection pool. Every error it, and the rows,
// transactions and batches it returns, hand back goes through classify:
// the store's outages are told apart in this one place, whichever method
// of the store met them.
//
// A connection the server closed while it sat in the pool (a restart of
// the store) is found before it is handed out (Open's PrepareConn,
// closedByServer) and replaced. One it closed in the moment after that
// fails the call before anything was sent (pgconn.SafeToRetry): the pool
// drops it and the call goes once more, on another. A call whose query
// may have reached the server is never sent again.
type storePool struct{ *pgxpool.Pool }

// again is f's result, or, when f failed before sending anything, that of
// one more f.
func again[T any](f func() (T, error)) (T, error) {
	v, err := f()
	if err != nil && pgconn.SafeToRetry(err) {
		v, err = f()
	}
	return v, classify(err)
}

// declaringTx is the context key of the transaction of a Declaring run.
type declaringTx struct{}

// joined is the transaction of the Declaring run ctx belongs to, nil
// outside one: the pool's calls made with ctx run in it. Each write runs
// in a savepoint of its own, so that one that fails (a unique violation
// the caller expects) fails only itself, as on the pool.
func joined(ctx context.Context) pgx.Tx {
	t, _ := ctx.Value(declaringTx{}).(pgx.Tx)
	return t
}

func (p storePool) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if t := joined(ctx); t != nil {
		sp, err := t.Begin(ctx)
		if err != nil {
			return pgconn.CommandTag{}, classify(err)
		}
		tag, err := sp.Exec(ctx, sql, args...)
		return tag, classify(endSavepoint(ctx, sp, err))
	}
	return again(func() (pgconn.CommandTag, error) { return p.Pool.Exec(ctx, sql, args...) })
}

// endSavepoint releases sp when err, its statements' error, is nil, and
// rolls back to it otherwise; it returns err or the release's.
func endSavepoint(ctx context.Context, sp pgx.Tx, err error) error {
	if err != nil {
		sp.Rollback(ctx)
		return err
	}
	return sp.Commit(ctx)
}

func (p storePool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if t := joined(ctx); t != nil {
		return tx{t}.Query(ctx, sql, args...)
	}
	r, err := again(func() (pgx.Rows, error) { return p.Pool.Query(ctx, sql, args...) })
	if err != nil {
		return r, err
	}
	return rows{r}, nil
}

func (p storePool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if t := joined(ctx); t != nil {
		return tx{t}.QueryRow(ctx, sql, args...)
	}
	return row{p.Pool.QueryRow(ctx, sql, args...), func() pgx.Row { return p.Pool.QueryRow(ctx, sql, args...) }}
}

func (p storePool) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	if t := joined(ctx); t != nil {
		sp, err := t.Begin(ctx)
		if err != nil {
			return failedBatch{err: classify(err)}
		}
		return &savepointBatch{batch{sp.SendBatch(ctx, b), nil}, ctx, sp}
	}
	// Sent again, a new batch of the same queries: pgx keeps in the sent
	// one the statements it prepared, on a connection now gone.
	fresh := &pgx.Batch{}
	for _, q := range b.QueuedQueries {
		fresh.Queue(q.SQL, q.Arguments...)
	}
	return &batch{p.Pool.SendBatch(ctx, b), func() pgx.BatchResults { return p.Pool.SendBatch(ctx, fresh) }}
}

func (p storePool) Begin(ctx context.Context) (pgx.Tx, error) {
	if t := joined(ctx); t != nil {
		// A savepoint: its Commit releases it, its Rollback undoes it.
		sp, err := t.Begin(ctx)
		if err != nil {
			return nil, classify(err)
		}
		return tx{sp}, nil
	}
	t, err := again(func() (pgx.Tx, error) { return p.Pool.BeginTx(ctx, readCommitted) })
	if err != nil {
		return nil, err
	}
	return tx{t}, nil
}

// readCommitted is the level of the store's transactions, whatever the
// server's default_transaction_isolation: they order themselves with
// locks (a row FOR UPDATE, an advisory lock) and then read, in a
// statement of their own, what the transactions they waited for
// committed. At REPEATABLE READ that read would use the snapshot taken
// before the wait (a quota counted without the write it waited for); at
// SERIALIZABLE it fails (40001) where the lock already made the order.
// The store's sessions default to it too (setUpSession), for the implicit
// transactions; the BEGIN option holds where that default is not set
// (RotateKey's pool) or is lost (a pooler that runs the transaction on
// another server session).
var readCommitted = pgx.TxOptions{IsoLevel: pgx.ReadCommitted}

func (p storePool) Acquire(ctx context.Context) (*pgxpool.Conn, error) {
	c, err := p.Pool.Acquire(ctx)
	return c, classify(err)
}

// row is a row whose Scan, when again is set, runs its query once more if
// it failed before it was sent (storePool).
type row struct {
	pgx.Row
	again func() pgx.Row
}

func (r row) Scan(dest ...any) error {
	err := r.Row.Scan(dest...)
	if err != nil && r.again != nil && pgconn.SafeToRetry(err) {
		err = r.again().Scan(dest...)
	}
	return classify(err)
}

type rows struct{ pgx.Rows }

func (r rows) Err() error             { return classify(r.Rows.Err()) }
func (r rows) Scan(dest ...any) error { return classify(r.Rows.Scan(dest...)) }

type tx struct{ pgx.Tx }

func (t tx) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := t.Tx.Exec(ctx, sql, args...)
	return tag, classify(err)
}

func (t tx) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	r, err := t.Tx.Query(ctx, sql, args...)
	if err != nil {
		return r, classify(err)
	}
	return rows{r}, nil
}

func (t tx) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return row{t.Tx.QueryRow(ctx, sql, args...), nil}
}

func (t tx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return &batch{t.Tx.SendBatch(ctx, b), nil}
}

func (t tx) Commit(ctx context.Context) error { return classify(t.Tx.Commit(ctx)) }

// batch is a batch's results; when again is set, a batch whose first
// result failed before the batch was sent goes once more (storePool).
type batch struct {
	pgx.BatchResults
	again func() pgx.BatchResults
}

// retry sends the batch again when err, its first result's, says that it
// was not sent; it reports whether it did.
func (b *batch) retry(err error) bool {
	if err == nil || b.again == nil || !pgconn.SafeToRetry(err) {
		b.again = nil
		return false
	}
	b.BatchResults.Close()
	b.BatchResults, b.again = b.again(), nil
	return true
}

func (b *batch) Exec() (pgconn.CommandTag, error) {
	tag, err := b.BatchResults.Exec()
	if b.retry(err) {
		tag, err = b.BatchResults.Exec()
	}
	return tag, classify(err)
}

func (b *batch) Query() (pgx.Rows, error) {
	r, err := b.BatchResults.Query()
	if b.retry(err) {
		r, err = b.BatchResults.Query()
	}
	if err != nil {
		return r, classify(err)
	}
	return rows{r}, nil
}

func (b *batch) QueryRow() pgx.Row {
	b.again = nil // its error shows only at Scan
	return row{b.BatchResults.QueryRow(), nil}
}

func (b *batch) Close() error { return classify(b.BatchResults.Close()) }

// savepointBatch is a batch of a Declaring run's in a savepoint of its
// own, released or undone when it is closed.
type savepointBatch struct {
	batch
	ctx context.Context
	sp  pgx.Tx
}

func (b *savepointBatch) Close() error {
	return classify(endSavepoint(b.ctx, b.sp, b.BatchResults.Close()))
}

// failedBatch is a batch that could not be sent: each result is err.
type failedBatch struct {
	pgx.BatchResults // nil: only the methods below are called
	err              error
}

func (b failedBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, b.err }
func (b failedBatch) Query() (pgx.Rows, error)         { return nil, b.err }
func (b failedBatch) QueryRow() pgx.Row                { return row{errRow{b.err}, nil} }
func (b failedBatch) Close() error                     { return b.err }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }
