package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/groupcommit"
	"github.com/shiftkey/shiftkey/secretbox"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// The issue path's writes (a credential, a login's first salt) go through
// one writer (groupcommit) that owns one connection: it runs every write
// pending in its FIFO in one transaction and commits them with one fsync,
// then answers each. None of them polls SQLite's busy handler for the
// write lock.

// maxBatch bounds one transaction, so that the first request of a long
// queue is not held behind all of it.
const maxBatch = 256

// Its writer gathers announced credentials (groupcommit.GatherAnnounced;
// LoginSalt calls Expect): at 4,096 PBKDF2 iterations, issues reached the
// writer one per derivation and it committed 1.5 of them per fsync at
// c=64; the SQLite writer runs on the cores the derivations need, so
// every flush it saves is CPU for issuing (bench/issue/README.md).

// groupWriter is the single writer of the issue path.
type groupWriter struct {
	conn *sql.Conn
	// Every statement, the transaction's own included, is prepared once
	// on conn and run there. Not through a *sql.Tx: Tx.StmtContext
	// prepares a statement of a Conn again at every call, which was a
	// quarter of the writer's CPU (SQLite's parser), in the one goroutine
	// every issue waits for.
	begin, commitTx, rollback *sql.Stmt
	// finish completes, between two batches, a checkpoint the checkpointer
	// did most of (checkpointer.go).
	finish                    *sql.Stmt
	checkpoints               *checkpointer
	insCred, insSalt, getSalt *sql.Stmt
	curKey                    *sql.Stmt
	// scopeCluster, scopeWorkgroup find a credential's cluster or
	// workgroup by its unique id (Credential.ScopeID), in the batch's
	// transaction: BEGIN IMMEDIATE orders it with DeleteCluster's.
	scopeCluster, scopeWorkgroup *sql.Stmt
	// key returns a store key by id (DB.key): the credentials of a batch
	// are sealed under the current one, looked up once per batch.
	key func(ctx context.Context, q querier, id string) (*secretbox.Key, error)
	q   *groupcommit.Writer[*shiftkey.IssueWrite, shiftkey.IssueWriteResult]
	// committed runs after each commit, before any op is answered, with
	// the ops of the batch and their outcomes (the credential cache adds
	// the stored credentials to their logins' entries, drops the rest).
	committed func([]*shiftkey.IssueWrite, []shiftkey.IssueWriteResult)
	commits   atomic.Uint64 // transactions committed (tests)
	// wait bounds how long a write waits for its batch (writeWait).
	wait time.Duration
	// files are the database and its WAL as opened (files.go).
	files *storeFiles
	// probedCheckpoints is checkpoints.done when the writer last asked
	// files whether the file system failed (checkpointed).
	probedCheckpoints uint64
	// health is whether the last batch failed (DB.WriteErr).
	health groupcommit.Health
}

// writeWait is how long an issue waits for its write, queued behind other
// batches and then its own, before it fails (see submit): a batch waits
// up to busy_timeout (10 s) for a write lock another process holds.
const writeWait = 30 * time.Second

const credentialInsert = `INSERT INTO credentials (id, cluster, login_name, db_user, db_name, db_groups, auto_create,
	stored_key, server_key, digest_sha256, digest_md5, digests, principal_arn, access_key_id, principal_id, role_arn, session_created_at,
	request_id, created_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`

// credentialArgs are c's columns, its verifiers sealed under k (in the
// clear when k is nil: a store without a key).
func credentialArgs(c *shiftkey.Credential, k *secretbox.Key) ([]any, error) {
	groups, err := json.Marshal(nonNil(c.DBGroups))
	if err != nil {
		return nil, err
	}
	sha, md5, digests := c.DigestSHA256, c.DigestMD5, sql.NullString{}
	if k != nil && (len(sha) > 0 || len(md5) > 0) {
		if digests.String, err = k.SealPair(secretbox.CredentialDigests, c.ID, sha, md5); err != nil {
			return nil, err
		}
		sha, md5, digests.Valid = nil, nil, true
	}
	return []any{c.ID, c.Cluster, c.LoginName, c.DBUser, c.DBName, string(groups), c.AutoCreate,
		c.StoredKey, c.ServerKey, sha, md5, digests, c.PrincipalARN, nullIfEmpty(c.AccessKeyID),
		nullIfEmpty(c.IssuedTo.PrincipalID), nullIfEmpty(c.IssuedTo.RoleARN), nullMillis(c.IssuedTo.SessionCreatedAt),
		c.RequestID, millis(c.CreatedAt), millis(c.ExpiresAt)}, nil
}

// nullMillis stores the zero time (unknown) as NULL.
func nullMillis(t time.Time) sql.NullInt64 {
	return sql.NullInt64{Int64: millis(t), Valid: !t.IsZero()}
}

// nullIfEmpty stores "" (unknown) as NULL, as the rows from before the
// column was added have it.
func nullIfEmpty(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}

func newGroupWriter(ctx context.Context, files *storeFiles, db *sql.DB, key func(context.Context, querier, string) (*secretbox.Key, error), committed func([]*shiftkey.IssueWrite, []shiftkey.IssueWriteResult), checkpoints *checkpointer) (*groupWriter, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	w := &groupWriter{conn: conn, key: key, committed: committed, checkpoints: checkpoints, wait: writeWait, files: files}
	for _, p := range []struct {
		st **sql.Stmt
		q  string
	}{
		{&w.begin, `BEGIN IMMEDIATE`},
		{&w.commitTx, `COMMIT`},
		{&w.rollback, `ROLLBACK`},
		{&w.finish, passiveCheckpoint},
		{&w.insCred, credentialInsert},
		{&w.insSalt, `INSERT OR IGNORE INTO login_salts (cluster, login_name, salt, iterations) VALUES (?,?,?,?)`},
		{&w.getSalt, `SELECT salt, iterations FROM login_salts WHERE cluster = ? AND login_name = ?`},
		{&w.curKey, `SELECT id FROM secret_keys WHERE state = 'current'`},
		{&w.scopeCluster, `SELECT count(*) FROM clusters WHERE identifier = ? AND namespace_id = ?`},
		{&w.scopeWorkgroup, `SELECT count(*) FROM workgroups WHERE id = ?`},
	} {
		if *p.st, err = conn.PrepareContext(ctx, p.q); err != nil {
			w.closeConn()
			return nil, err
		}
	}
	w.q = groupcommit.New(4096, maxBatch, func(batch []*shiftkey.IssueWrite) []shiftkey.IssueWriteResult {
		results := w.commit(batch, make([]shiftkey.IssueWriteResult, 0, len(batch)))
		w.record(results)
		if w.committed != nil {
			w.committed(batch, results)
		}
		return results
	}, groupcommit.GatherAnnounced())
	return w, nil
}

func (w *groupWriter) closeConn() {
	for _, st := range []*sql.Stmt{w.begin, w.commitTx, w.rollback, w.finish, w.insCred, w.insSalt, w.getSalt, w.curKey, w.scopeCluster, w.scopeWorkgroup} {
		if st != nil {
			st.Close()
		}
	}
	w.conn.Close()
}

// close answers what is queued, then stops the writer and releases its
// connection.
func (w *groupWriter) close() {
	w.q.Close()
	w.closeConn()
}

// submit queues op and waits for its batch to be durable, or until ctx
// ends or w.wait passes (groupcommit.Writer.Submit): then op, if still
// queued, is dropped unwritten, and if its batch was under way it may
// still commit; either way it is not acknowledged.
func (w *groupWriter) submit(ctx context.Context, op *shiftkey.IssueWrite) shiftkey.IssueWriteResult {
	// Waiting for a commit is no CPU work: the place goes to the next request.
	shiftkey.LeaveAdmission(ctx)
	// A batch waits up to busy_timeout for a lock another process holds,
	// and the batches queued behind it as long again each: the caller
	// leaves after w.wait with an error that says so (an op already in a
	// batch may still commit; it is not acknowledged).
	ctx, cancel := context.WithTimeoutCause(ctx, w.wait, errWriteWait)
	defer cancel()
	res, err := w.q.Submit(ctx, op)
	if errors.Is(err, errWriteWait) {
		w.health.Failed(err)
		slog.Warn("sqlite store: an issue's write was not committed in time; it fails with ServiceUnavailable", "wait", w.wait, "queued", w.q.Queued())
		err = shiftkey.StoreUnavailable()
	}
	if err != nil {
		return shiftkey.IssueWriteResult{Err: err}
	}
	return res
}

// record notes in w.health whether a batch failed for a reason of the
// store's (anything but a constraint or a deleted cluster, which are its
// op's).
func (w *groupWriter) record(results []shiftkey.IssueWriteResult) {
	for _, r := range results {
		var se *sqlite.Error
		if r.Err != nil && !(errors.As(r.Err, &se) && se.Code()&0xff == sqlite3.SQLITE_CONSTRAINT) && !errors.Is(r.Err, errScopeGone) {
			w.health.Failed(r.Err)
			return
		}
	}
	w.health.Committed()
}

// errWriteWait is the cause of an issue's write that waited writeWait.
var errWriteWait = errors.New("sqlite store: write not committed within its wait")

// commit runs batch in one transaction. A statement that fails (a
// constraint) fails its op only: SQLite undoes the one statement and the
// transaction goes on. A failed commit fails every op.
func (w *groupWriter) commit(batch []*shiftkey.IssueWrite, results []shiftkey.IssueWriteResult) []shiftkey.IssueWriteResult {
	ctx := context.Background()
	w.finishCheckpoint()
	if _, err := w.begin.ExecContext(ctx); err != nil {
		err = w.lockedOut(err, len(batch))
		for range batch {
			results = append(results, shiftkey.IssueWriteResult{Err: err})
		}
		return results
	}
	if err := w.checkpointed(); err != nil {
		w.rollback.ExecContext(ctx)
		for range batch {
			results = append(results, shiftkey.IssueWriteResult{Err: err})
		}
		return results
	}
	// The sealing key is read in the batch's transaction: a rotation
	// committed by another process is seen by the next batch.
	var key *secretbox.Key
	var keyErr error
	for _, op := range batch {
		if op.Credential != nil {
			key, keyErr = w.sealingKey(ctx)
			break
		}
	}
	for _, op := range batch {
		if op.Credential != nil && keyErr != nil {
			results = append(results, shiftkey.IssueWriteResult{Err: keyErr})
			continue
		}
		results = append(results, w.apply(ctx, op, key))
	}
	if _, err := w.commitTx.ExecContext(ctx); err != nil {
		// A COMMIT that failed may leave the transaction open.
		w.rollback.ExecContext(ctx)
		err = w.lockedOut(err, len(batch))
		for i := range results {
			results[i] = shiftkey.IssueWriteResult{Err: err}
		}
	} else if err := w.files.committed(); err != nil {
		// Committed to files no path reaches, or the COMMIT's fsync
		// returned 0 for a transaction the file system dropped as it
		// failed (fsprobe_linux.go): lost at the next start.
		for i := range results {
			results[i] = shiftkey.IssueWriteResult{Err: err}
		}
	}
	w.commits.Add(1)
	return results
}

// lockedOut is err, or when it is SQLITE_BUSY (lockedOut: another
// connection held the write lock past busy_timeout) the store's answer
// for an issue's write it did not record in time, ServiceUnavailable,
// which clients retry, with err kept for /readyz. Nothing of the batch
// was written.
func (w *groupWriter) lockedOut(err error, n int) error {
	if err = lockedOut(err); !errors.Is(err, shiftkey.ErrStoreUnavailable) {
		return err
	}
	slog.Warn("sqlite store: another connection held the write lock past busy_timeout; the batch's writes fail with ServiceUnavailable", "writes", n, "error", err)
	return fmt.Errorf("%w (%w)", shiftkey.StoreUnavailable(), err)
}

// finishCheckpoint copies into the database what the WAL gained while the
// checkpointer ran, when it asks for that. A checkpoint in another
// goroutine never catches up with a writer that keeps committing, and the
// WAL restarts from its beginning (instead of growing) only when a write
// transaction begins with every frame copied; between two batches no
// frame is being added, so this one completes it.
func (w *groupWriter) finishCheckpoint() {
	if !w.checkpoints.due.Swap(false) {
		return
	}
	if _, _, err := w.checkpoints.checkpoint(w.finish); err != nil {
		w.checkpoints.failed(err)
	}
}

// checkpointed fails, in a transaction just begun, when a checkpoint
// has run since the file system was last asked and it has failed since.
// A checkpoint's fsync of the database can return 0 for pages the file
// system dropped as it failed, as a commit's can (fsprobe_linux.go), and
// then marks the WAL copied: the transaction that begins with the whole
// WAL copied writes the next frames over it from its start, and the
// commits in those frames would be nowhere. Such a transaction begins
// after that checkpoint's fsync, so after the failure, which it asks
// about here before writing anything. done is read before started: a
// checkpoint not counted in the done read is counted in started.
func (w *groupWriter) checkpointed() error {
	done := w.checkpoints.done.Load()
	if done == w.probedCheckpoints && w.checkpoints.started.Load() == done {
		return nil
	}
	if err := w.files.fsFailed(); err != nil {
		return err
	}
	w.probedCheckpoints = done
	return nil
}

// sealingKey is the current store key, nil in a store without one.
func (w *groupWriter) sealingKey(ctx context.Context) (*secretbox.Key, error) {
	var id string
	err := w.curKey.QueryRowContext(ctx).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return w.key(ctx, w.conn, id)
}

func (w *groupWriter) apply(ctx context.Context, op *shiftkey.IssueWrite, key *secretbox.Key) shiftkey.IssueWriteResult {
	if op.Credential != nil {
		if err := w.scopeExists(ctx, op.Credential.Cluster, op.Credential.ScopeID); err != nil {
			return shiftkey.IssueWriteResult{Err: err}
		}
		args, err := credentialArgs(op.Credential, key)
		if err != nil {
			return shiftkey.IssueWriteResult{Err: err}
		}
		_, err = w.insCred.ExecContext(ctx, args...)
		return shiftkey.IssueWriteResult{Err: err}
	}
	s := op.Salt
	if err := w.scopeExists(ctx, s.Cluster, s.ScopeID); err != nil {
		return shiftkey.IssueWriteResult{Err: err}
	}
	if _, err := w.insSalt.ExecContext(ctx, s.Cluster, s.Login, s.Fresh.Salt, s.Fresh.Iterations); err != nil {
		return shiftkey.IssueWriteResult{Err: err}
	}
	var r shiftkey.IssueWriteResult
	r.Err = w.getSalt.QueryRowContext(ctx, s.Cluster, s.Login).Scan(&r.Salt.Salt, &r.Salt.Iterations)
	return r
}

// scopeExists fails a credential or salt of scope (a cluster identifier
// or workgroup scope) when the cluster or workgroup it was issued for
// (unique id scopeID) is no longer in the store: deleted, perhaps created
// again under the same identifier for another backend, while the issue
// ran.
func (w *groupWriter) scopeExists(ctx context.Context, scope, scopeID string) error {
	if scopeID == "" {
		return nil
	}
	var n int
	var err error
	if strings.HasPrefix(scope, shiftkey.WorkgroupScopePrefix) {
		err = w.scopeWorkgroup.QueryRowContext(ctx, scopeID).Scan(&n)
	} else {
		err = w.scopeCluster.QueryRowContext(ctx, scope, scopeID).Scan(&n)
	}
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("%w%.0w", shiftkey.ScopeNotFound(&shiftkey.Credential{Cluster: scope, ScopeID: scopeID}), errScopeGone)
	}
	return nil
}

// errScopeGone marks ScopeNotFound (%.0w: wrapped, not printed): the
// op's failure (its cluster was deleted), not the store's.
var errScopeGone = errors.New("the credential's cluster or workgroup was deleted")

// errClosed is what writes after Close get.
var errClosed = errors.New("sqlite: store closed")
