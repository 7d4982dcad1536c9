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
type storePool struct{ *pgxpool.Pool }

func (p storePool) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	tag, err := p.Pool.Exec(ctx, sql, args...)
	return tag, classify(err)
}

func (p storePool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	r, err := p.Pool.Query(ctx, sql, args...)
	if err != nil {
		return r, classify(err)
	}
	return rows{r}, nil
}

func (p storePool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	return row{p.Pool.QueryRow(ctx, sql, args...)}
}

func (p storePool) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return batch{p.Pool.SendBatch(ctx, b)}
}

func (p storePool) Begin(ctx context.Context) (pgx.Tx, error) {
	t, err := p.Pool.Begin(ctx)
	if err != nil {
		return nil, classify(err)
	}
	return tx{t}, nil
}

func (p storePool) Acquire(ctx context.Context) (*pgxpool.Conn, error) {
	c, err := p.Pool.Acquire(ctx)
	return c, classify(err)
}

type row struct{ pgx.Row }

func (r row) Scan(dest ...any) error { return classify(r.Row.Scan(dest...)) }

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
	return row{t.Tx.QueryRow(ctx, sql, args...)}
}

func (t tx) SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults {
	return batch{t.Tx.SendBatch(ctx, b)}
}

func (t tx) Commit(ctx context.Context) error { return classify(t.Tx.Commit(ctx)) }

type batch struct{ pgx.BatchResults }

func (b batch) Exec() (pgconn.CommandTag, error) {
	tag, err := b.BatchResults.Exec()
	return tag, classify(err)
}

func (b batch) Query() (pgx.Rows, error) {
	r, err := b.BatchResults.Query()
	if err != nil {
		return r, classify(err)
	}
	return rows{r}, nil
}

func (b batch) QueryRow() pgx.Row { return row{b.BatchResults.QueryRow()} }
func (b batch) Close() error      { return classify(b.BatchResults.Close()) }
