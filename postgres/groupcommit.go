package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/groupcommit"
	"github.com/shiftkey/shiftkey/secretbox"
)

// The issue path's writes (a credential, a login's first salt) go through
// one writer per process (groupcommit) that owns one connection: it takes
// every write pending in its FIFO and sends them as one pipelined batch, which
// PostgreSQL runs as one transaction with one commit (one WAL flush); it
// answers each write only once that commit has returned. Concurrent
// issuers thus share round trips and flushes instead of each paying both.
//
// These writes NOTIFY nothing: a replica's cached logins may lack a new
// credential, which a login that matches none of them reads again
// (MissedCredentials), and a new salt replaces no cached one. A
// NOTIFY would also serialize the commits of every replica: PostgreSQL
// holds a database-wide lock from a notifying transaction's pre-commit
// until its commit is flushed.

// sealLock is the advisory lock key ("sealkey" in ASCII) that orders
// the group writer's batches against a key rotation. A lock in shared
// mode, unlike the current key's row FOR SHARE that the batches took
// before, writes nothing: locking a row sets its xmax (a WAL record and a
// dirtied page per batch) and, when two replicas' batches hold it at once,
// creates a MultiXact each time, which made PostgreSQL's CPU per issue a
// third higher with two replicas than with one.
const sealLock int64 = 0x7365616c6b6579

// maxBatch bounds one transaction, so that the first write of a long
// queue is not held behind all of it.
const maxBatch = 256

// Its writer gathers announced credentials (groupcommit.GatherAnnounced):
// without it, replicas that share the issue load each commit batches as
// small as their share of it: two replicas made 0.61 commits per issue
// where one made 0.37, each commit costing a round trip, a WAL flush and
// wake-ups on both sides.

// batchTimeout bounds one batch's round trip, so that a store that stopped
// answering fails the writes instead of holding them for ever.
const batchTimeout = 30 * time.Second

// writeWait is how long an issue waits for its write, queued behind other
// batches and then its own, before it fails (see submit).
const writeWait = batchTimeout

// errKeyChanged fails a credential sealed under a key that is no longer
// the store's current one (a rotation committed meanwhile): it is sealed
// again under the new key and retried.
var errKeyChanged = errors.New("postgres store: the store key changed")

// record notes in w.health whether a batch failed for a reason of the
// store's (anything but a constraint, which is its op's).
func (w *groupWriter) record(results []shiftkey.IssueWriteResult) {
	for _, r := range results {
		var pe *pgconn.PgError
		if r.Err != nil && !(errors.As(r.Err, &pe) && strings.HasPrefix(pe.Code, "23")) && !errors.Is(r.Err, errScopeGone) &&
			!errors.Is(r.Err, errCallerLeft) && !errors.Is(r.Err, errConflicts) {
			w.health.Failed(r.Err)
			return
		}
	}
	w.health.Committed()
}

// errScopeGone marks ScopeNotFound (%.0w: wrapped, not printed): the
// op's failure (its cluster was deleted), not the store's.
var errScopeGone = errors.New("the credential's cluster or workgroup was deleted")

// errCallerLeft marks a write not committed because its caller had left
// (its context ended) before the writer came to it: the op's outcome,
// not the store's.
var errCallerLeft = errors.New("postgres store: the write's caller left before it was committed")

// errWriteWait is the cause of an issue's write that waited writeWait.
var errWriteWait = errors.New("postgres store: write not committed within its wait")

// errClosed is what writes after Close get.
var errClosed = errors.New("postgres store: closed")

// write is an op with its caller's context, which the writer checks
// before each commit of it after the first (its batch's retries): a
// write whose caller left is not committed then.
type write struct {
	*shiftkey.IssueWrite
	ctx context.Context
}

// left is the error of a write whose caller has left, nil while it waits.
func (op *write) left() error { return callerLeft(op.ctx) }

type groupWriter struct {
	d   *DB
	cfg *pgx.ConnConfig

	q *groupcommit.Writer[*write, shiftkey.IssueWriteResult]
	// wait bounds how long a write waits for its batch (writeWait).
	wait time.Duration
	// keyRetries bounds the retries of a write sealed under a key a
	// rotation retired (keyChangeRetries).
	keyRetries int
	// conflictRetries bounds the retries of a write alone that met
	// another transaction (conflictRetries).
	conflictRetries int
	// health is whether the last batch failed (DB.WriteErr).
	health groupcommit.Health

	// Owned by the writer goroutine.
	conn *pgx.Conn
	// key seals credentials' digests: the store's current key as last
	// seen, nil in a store without one.
	key *secretbox.Key

	commits atomic.Uint64 // transactions committed (tests)
	// afterKeyRead, when set (tests), runs in refreshKey between reading
	// the current key and resolving it.
	afterKeyRead func()
}

func startGroupWriter(d *DB, cfg *pgx.ConnConfig, key *secretbox.Key) *groupWriter {
	w := &groupWriter{d: d, cfg: cfg, key: key, wait: writeWait, keyRetries: keyChangeRetries, conflictRetries: conflictRetries}
	w.q = groupcommit.New(4096, maxBatch, func(batch []*write) []shiftkey.IssueWriteResult {
		results := w.commit(batch)
		w.record(results)
		return results
	}, groupcommit.GatherAnnounced())
	return w
}

// submit queues op and waits for its batch to be durable, or until ctx
// ends or w.wait passes (groupcommit.Writer.Submit): then op, if still
// queued, is dropped unwritten, and if its batch was under way it may
// still commit; either way it is not acknowledged.
func (w *groupWriter) submit(ctx context.Context, op *shiftkey.IssueWrite) shiftkey.IssueWriteResult {
	// Waiting for a commit is no CPU work: the place goes to the next request.
	shiftkey.LeaveAdmission(ctx)
	// A store that does not answer (a lock held on credentials, a server
	// failing over) would otherwise hold the caller for the batch in
	// flight's timeout and then its own batch's, longer than the API's
	// write timeout: the caller leaves after w.wait with an error that
	// says so (an op already in a batch may still commit; it is not
	// acknowledged).
	ctx, cancel := context.WithTimeoutCause(ctx, w.wait, errWriteWait)
	defer cancel()
	res, err := w.q.Submit(ctx, &write{op, ctx})
	switch {
	case errors.Is(err, groupcommit.ErrClosed):
		err = errClosed
	case errors.Is(err, errWriteWait):
		w.health.Failed(err)
		slog.Warn("postgres store: an issue's write was not committed in time; it fails with ServiceUnavailable", "wait", w.wait, "queued", w.q.Queued())
		err = shiftkey.StoreUnavailable()
	}
	if err != nil {
		return shiftkey.IssueWriteResult{Err: err}
	}
	return res
}

// close answers what is queued, then stops the writer and closes its
// connection.
func (w *groupWriter) close() {
	w.q.Close()
	if w.conn != nil {
		w.conn.Close(context.Background())
	}
}

// commit writes batch in one transaction. When a statement fails (a
// constraint), PostgreSQL aborts the whole transaction: each op is then
// retried alone, so that it fails only itself. Credentials sealed under a
// key that a rotation retired are sealed again under the store's current
// key and retried together, as long as rotations keep committing between
// the read of the key and the insert (rotations queued on sealLock all
// commit before the retry's batch gets it, so one more read sees the last
// key), up to keyChangeRetries times; past that the issue is answered
// ServiceUnavailable, which the caller may retry.
func (w *groupWriter) commit(batch []*write) []shiftkey.IssueWriteResult {
	results := w.commitOnce(batch)
	for n := 0; ; n++ {
		var retry []int
		for i := range batch {
			if errors.Is(results[i].Err, errKeyChanged) {
				retry = append(retry, i)
			}
		}
		if len(retry) == 0 {
			return results
		}
		if n == w.keyRetries {
			slog.Warn("postgres store: the store key changed at every retry of an issue's write; it fails with ServiceUnavailable", "retries", n, "writes", len(retry))
			for _, i := range retry {
				results[i] = shiftkey.IssueWriteResult{Err: keyKeepsChanging()}
			}
			return results
		}
		if err := w.refreshKey(); err != nil {
			for _, i := range retry {
				results[i] = shiftkey.IssueWriteResult{Err: err}
			}
			return results
		}
		var ops []*write
		var at []int
		for _, i := range retry {
			if err := batch[i].left(); err != nil {
				results[i] = shiftkey.IssueWriteResult{Err: err}
				continue
			}
			ops, at = append(ops, batch[i]), append(at, i)
		}
		if len(ops) == 0 {
			return results
		}
		for j, r := range w.commitOnce(ops) {
			results[at[j]] = r
		}
	}
}

// keyChangeRetries bounds how many times one write is sealed again after
// rotations: each retry means another rotation committed in the moment
// between reading the key and inserting, which only a store rotated
// without pause keeps doing.
const keyChangeRetries = 8

// keyKeepsChanging is the answer to a write that met a rotation at every
// retry: nothing was recorded, and the caller may try again (the SDKs
// retry ServiceUnavailable).
func keyKeepsChanging() error {
	return shiftkey.Errorf(shiftkey.CodeServiceUnavailable,
		"The store key was rotated again at each attempt to record the credential; no credential was issued. Try again.")
}

// commitOnce is commit without the retries of credentials sealed under a
// retired key: they come back with errKeyChanged. A batch the server
// refused has each write retried alone, but for those whose caller left
// meanwhile: committed then, a credential would exist that nobody was
// told of. A write alone that met another transaction (conflict) is
// retried after a short pause, up to w.conflictRetries times, then
// answered ServiceUnavailable.
func (w *groupWriter) commitOnce(batch []*write) []shiftkey.IssueWriteResult {
	var results []shiftkey.IssueWriteResult
	send := func() (err error) {
		results, err = w.send(batch)
		return err
	}
	var err error
	if len(batch) == 1 {
		err = retryConflicts(batch[0].ctx, "issue", w.conflictRetries, send)
		if conflict(err) {
			err = fmt.Errorf("%w%.0w", conflictsPersist(), errConflicts)
		}
	} else {
		err = send()
	}
	// The writer's connection is its own, not the pool's (outage.go).
	err = classify(err)
	var pe *pgconn.PgError
	switch {
	case err == nil:
	case errors.As(err, &pe) && len(batch) > 1 && (conflict(err) || !errors.Is(err, shiftkey.ErrStoreUnavailable)):
		// The server refused a statement, so nothing committed.
		for i, op := range batch {
			if err := op.left(); err != nil {
				results[i] = shiftkey.IssueWriteResult{Err: err}
				continue
			}
			results[i] = w.commitOnce([]*write{op})[0]
		}
	default:
		for i := range results {
			results[i] = shiftkey.IssueWriteResult{Err: err}
		}
	}
	return results
}

// errConflicts marks conflictsPersist (%.0w): the op's failure, not the
// store's being down.
var errConflicts = errors.New("the write met a conflicting transaction at every retry")

// conflictsPersist is the answer to a write that met a conflicting
// transaction at every retry: nothing was recorded, and the caller may
// try again (the SDKs retry ServiceUnavailable).
func conflictsPersist() error {
	return shiftkey.Errorf(shiftkey.CodeServiceUnavailable,
		"The credential conflicted with concurrent writes at each attempt to record it; no credential was issued. Try again.")
}

// credentialColumns are the columns CreateCredential writes, in the order
// of credentialArgs.
const credentialColumns = `id, cluster, login_name, db_user, db_name, db_groups, auto_create, stored_key, server_key,
	digest_sha256, digest_md5, digests, principal_arn, access_key_id, principal_id, role_arn, session_created_at,
	request_id, created_at, expires_at`

const (
	credentialInsert = `INSERT INTO credentials (` + credentialColumns + `) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20)`
	// credentialInsertSealed inserts only while $21 is the store's current
	// key. The batch first takes sealLock shared (lockSeal), which a
	// rotation takes exclusively before it reads anything: the rotation
	// waits for the batch and reseals its credentials, or the batch waits
	// for the rotation, then sees the new key and inserts nothing
	// (errKeyChanged).
	credentialInsertSealed = `INSERT INTO credentials (` + credentialColumns + `) SELECT ` + credentialValues + `
	FROM secret_keys WHERE state = 'current' AND id = $21`
	// credentialValues are credentialArgs as a SELECT list.
	credentialValues = `$1::text, $2::text, $3::text, $4::text, $5::text, $6::text[], $7::boolean, $8::bytea, $9::bytea,
		$10::bytea, $11::bytea, $12::text, $13::text, $14::text, $15::text, $16::text, $17::timestamptz,
		$18::text, $19::timestamptz, $20::timestamptz`
	lockSeal = `SELECT pg_advisory_xact_lock_shared($1)`
	// lockScope orders a batch with DeleteCluster and DeleteWorkgroup,
	// which take scopeLock exclusively: a deletion waits for the batch
	// (then deletes what it wrote) or the batch waits for the deletion
	// (then finds the scope gone, scopedInsert, and inserts nothing).
	lockScope  = lockSeal
	saltInsert = `INSERT INTO login_salts (cluster, login_name, salt, iterations) VALUES ($1,$2,$3,$4) ON CONFLICT DO NOTHING`
	saltSelect = `SELECT salt, iterations FROM login_salts WHERE cluster = $1 AND login_name = $2`
)

// scopeCond is true while the cluster or workgroup a credential was
// issued for ($2 its scope, $n its ScopeID) exists.
func scopeCond(n int) string { return scopeCondOf(2, n) }

// scopeCondOf is scopeCond with the scope in $scope.
func scopeCondOf(scope, n int) string {
	return fmt.Sprintf(`(EXISTS (SELECT 1 FROM clusters WHERE identifier = $%[3]d::text AND namespace_id = $%[1]d::text)
	OR EXISTS (SELECT 1 FROM workgroups WHERE $%[3]d::text = '%[2]s' || id AND id = $%[1]d::text))`, n, shiftkey.WorkgroupScopePrefix, scope)
}

// saltInsertScoped is saltInsert of a salt with a ScopeID ($5), written
// only while its scope exists, which it answers: a salt written after
// its cluster's delete would stay for good.
var saltInsertScoped = `WITH s AS (SELECT ` + scopeCondOf(1, 5) + ` AS ok),
	i AS (INSERT INTO login_salts (cluster, login_name, salt, iterations) SELECT $1::text, $2::text, $3::bytea, $4::integer
		WHERE (SELECT ok FROM s) ON CONFLICT DO NOTHING RETURNING 1)
	SELECT (SELECT ok FROM s)`

// scopedInsert is credentialInsert (sealed: credentialInsertSealed) of a
// credential with a ScopeID, its statement's last parameter, in one
// statement that reads scopeCond once: whether the scope exists, and how
// many rows went in (none while it is gone; sealed, none when $21 is no
// longer the current key either).
func scopedInsert(sealed bool) string {
	n, from := 21, `WHERE (SELECT ok FROM s)`
	if sealed {
		n, from = 22, `FROM secret_keys WHERE state = 'current' AND id = $21 AND (SELECT ok FROM s)`
	}
	return `WITH s AS (SELECT ` + scopeCond(n) + ` AS ok),
	i AS (INSERT INTO credentials (` + credentialColumns + `) SELECT ` + credentialValues + ` ` + from + ` RETURNING 1)
	SELECT (SELECT ok FROM s), (SELECT count(*) FROM i)`
}

var credentialInsertScoped, credentialInsertSealedScoped = scopedInsert(false), scopedInsert(true)

// scopeLock is the advisory lock key ("scopes" in ASCII) of lockScope.
const scopeLock int64 = 0x73636f706573

// credentialArgs are c's columns, its Redshift verifiers sealed under k
// (in the clear when k is nil: a store without a key).
func credentialArgs(c *shiftkey.Credential, k *secretbox.Key) ([]any, error) {
	sha, md5, digests := c.DigestSHA256, c.DigestMD5, (*string)(nil)
	if k != nil && (len(sha) > 0 || len(md5) > 0) {
		v, err := k.SealPair(secretbox.CredentialDigests, c.ID, sha, md5)
		if err != nil {
			return nil, err
		}
		sha, md5, digests = nil, nil, &v
	}
	return []any{c.ID, c.Cluster, c.LoginName, c.DBUser, c.DBName, nonNil(c.DBGroups), c.AutoCreate, c.StoredKey, c.ServerKey,
		sha, md5, digests, c.PrincipalARN, nullIfEmpty(c.AccessKeyID),
		nullIfEmpty(c.IssuedTo.PrincipalID), nullIfEmpty(c.IssuedTo.RoleARN), nullIfZero(c.IssuedTo.SessionCreatedAt),
		c.RequestID, c.CreatedAt, c.ExpiresAt}, nil
}

// nullIfZero stores the zero time (unknown) as NULL.
func nullIfZero(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// nullIfEmpty stores "" (unknown) as NULL, as the rows from before the
// column was added have it.
func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// send runs batch as one pipelined implicit transaction and returns each
// op's result once the commit has returned. err is the batch's failure:
// then nothing committed (a *pgconn.PgError) or the outcome is unknown.
func (w *groupWriter) send(batch []*write) ([]shiftkey.IssueWriteResult, error) {
	results := make([]shiftkey.IssueWriteResult, len(batch))
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	reused := true
	if w.conn != nil && !w.conn.IsClosed() && w.d.closedByServer(w.conn) {
		// Closed while idle (a restart of the store): a new one, rather
		// than the batch failing after it was sent.
		w.conn.Close(context.Background())
	}
	if w.conn == nil || w.conn.IsClosed() {
		c, err := w.connect(ctx)
		if err != nil {
			return results, err
		}
		w.conn, reused = c, false
	}
	b := &pgx.Batch{}
	// The key's lock first: results are read in the order queued.
	sealed := false
	for _, op := range batch {
		if op.Credential != nil && w.key != nil {
			b.Queue(lockSeal, sealLock)
			sealed = true
			break
		}
	}
	scoped := false
	for _, op := range batch {
		if op.Credential != nil && op.Credential.ScopeID != "" || op.Salt != nil && op.Salt.ScopeID != "" {
			b.Queue(lockScope, scopeLock)
			scoped = true
			break
		}
	}
	for i, op := range batch {
		switch {
		case op.Credential != nil && w.key != nil:
			args, err := credentialArgs(op.Credential, w.key)
			if err != nil {
				results[i].Err = err
				continue
			}
			args = append(args, w.key.ID())
			if id := op.Credential.ScopeID; id != "" {
				b.Queue(credentialInsertSealedScoped, append(args, id)...)
				continue
			}
			b.Queue(credentialInsertSealed, args...)
		case op.Credential != nil:
			args, err := credentialArgs(op.Credential, nil)
			if err != nil {
				results[i].Err = err
				continue
			}
			if id := op.Credential.ScopeID; id != "" {
				b.Queue(credentialInsertScoped, append(args, id)...)
				continue
			}
			b.Queue(credentialInsert, args...)
		default:
			s := op.Salt
			if s.ScopeID != "" {
				b.Queue(saltInsertScoped, s.Cluster, s.Login, s.Fresh.Salt, s.Fresh.Iterations, s.ScopeID)
			} else {
				b.Queue(saltInsert, s.Cluster, s.Login, s.Fresh.Salt, s.Fresh.Iterations)
			}
			b.Queue(saltSelect, s.Cluster, s.Login)
		}
	}
	if b.Len() == 0 {
		return results, nil
	}
	br := w.conn.SendBatch(ctx, b)
	err := func() error {
		for _, locked := range []bool{sealed, scoped} {
			if !locked {
				continue
			}
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		for i, op := range batch {
			if results[i].Err != nil {
				continue
			}
			if op.Credential != nil {
				exists, inserted := true, int64(0)
				if op.Credential.ScopeID != "" {
					if err := br.QueryRow().Scan(&exists, &inserted); err != nil {
						return err
					}
				} else {
					tag, err := br.Exec()
					if err != nil {
						return err
					}
					inserted = tag.RowsAffected()
				}
				switch {
				case !exists:
					results[i].Err = fmt.Errorf("%w%.0w", shiftkey.ScopeNotFound(op.Credential), errScopeGone)
				case w.key != nil && inserted == 0:
					results[i].Err = errKeyChanged
				}
				continue
			}
			if op.Salt.ScopeID != "" {
				var exists bool
				if err := br.QueryRow().Scan(&exists); err != nil {
					return err
				}
				if !exists {
					// Its SELECT finds no salt: read and dropped.
					if _, err := br.Exec(); err != nil {
						return err
					}
					results[i].Err = fmt.Errorf("%w%.0w", shiftkey.ScopeNotFound(&shiftkey.Credential{Cluster: op.Salt.Cluster, ScopeID: op.Salt.ScopeID}), errScopeGone)
					continue
				}
			} else if _, err := br.Exec(); err != nil {
				return err
			}
			if err := br.QueryRow().Scan(&results[i].Salt.Salt, &results[i].Salt.Iterations); err != nil {
				return err
			}
		}
		return nil
	}()
	// Close reads up to the ReadyForQuery that follows the commit: only
	// then is the batch durable.
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		var pe *pgconn.PgError
		if !errors.As(err, &pe) {
			// The connection is in an unknown state: start afresh.
			w.conn.Close(context.Background())
			w.conn = nil
			if reused && pgconn.SafeToRetry(err) {
				// Nothing was sent on a connection the server closed
				// while it was idle (a restart of the store): the
				// batch goes once more, on a new one, instead of
				// failing the first issues after an outage.
				return w.send(batch)
			}
		}
		return results, err
	}
	w.commits.Add(1)
	return results, nil
}

// connect opens the writer's connection (setUpSession).
func (w *groupWriter) connect(ctx context.Context) (*pgx.Conn, error) {
	c, err := pgx.ConnectConfig(ctx, w.cfg)
	if err != nil {
		return nil, err
	}
	if err := setUpSession(ctx, c); err != nil {
		c.Close(context.Background())
		return nil, err
	}
	return c, nil
}

// syncWarned and isolationWarned: the log said once that the store
// overrides the server's synchronous_commit=off, or its
// default_transaction_isolation (setUpSession).
var syncWarned, isolationWarned atomic.Bool

// setUpSession readies one of the store's connections (the pool's, the
// group writer's), in one round trip when the server's defaults are the
// usual ones; any other setting, local or remote, is left as it is.
//
// Durable commits: a write is acknowledged (an issue's credential, a
// revocation) once its commit returns; on a server whose default is
// synchronous_commit=off (a common tuning) that is before its WAL is
// flushed, and a crash or an immediate shutdown loses what was
// acknowledged: the store's sessions turn it on.
//
// READ COMMITTED: the store's writes order themselves with locks and then
// read what those they waited for committed (readCommitted), the group
// writer's batches too, which are implicit transactions: a batch that
// waited for a rotation (sealLock) or a scope's deletion (scopeLock)
// reads which key is current, or whether the scope is there, after the
// wait; at REPEATABLE READ it read them from before and inserted a
// credential sealed under a key the rotation had retired.
func setUpSession(ctx context.Context, c *pgx.Conn) error {
	var sc, iso string
	if err := c.QueryRow(ctx, `SELECT current_setting('synchronous_commit'), current_setting('default_transaction_isolation')`).Scan(&sc, &iso); err != nil {
		return err
	}
	if sc == "off" {
		if _, err := c.Exec(ctx, `SET synchronous_commit = on`); err != nil {
			return err
		}
		if !syncWarned.Swap(true) {
			slog.Warn("postgres store: the server's synchronous_commit is off; the store's sessions turn it on, so that nothing is acknowledged before its commit is flushed")
		}
	}
	if iso != "read committed" {
		if _, err := c.Exec(ctx, `SET default_transaction_isolation = 'read committed'`); err != nil {
			return err
		}
		if !isolationWarned.Swap(true) {
			slog.Info("postgres store: the store's sessions run read committed, which their locks order, instead of the server's default_transaction_isolation",
				"server_default", iso)
		}
	}
	return nil
}

// refreshKey makes the store's current key the one credentials are sealed
// under (after a rotation by `shiftkey store rotate-key`): read from the
// file the store records for it when this process was not given it.
func (w *groupWriter) refreshKey() error {
	ctx, cancel := context.WithTimeout(context.Background(), batchTimeout)
	defer cancel()
	// The id and the file in one statement: a rotation committed
	// between two reads deletes the row the second looks for.
	var id, file string
	err := w.d.pool.QueryRow(ctx, `SELECT id, file FROM secret_keys WHERE state = 'current'`).Scan(&id, &file)
	if errors.Is(err, pgx.ErrNoRows) {
		w.key = nil
		return nil
	}
	if err != nil {
		return err
	}
	if w.afterKeyRead != nil {
		w.afterKeyRead()
	}
	k, err := w.d.keys.Resolve(id, func(string) (string, error) { return file, nil })
	if err != nil {
		return err
	}
	w.key = k
	return nil
}
