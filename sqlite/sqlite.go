// Package sqlite implements shiftkey.Store on an embedded SQLite database
// (modernc.org/sqlite, pure Go), the default store of a single instance.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/gencache"
	"github.com/shiftkey/shiftkey/migrate"
	"github.com/shiftkey/shiftkey/rowscan"
	"github.com/shiftkey/shiftkey/secretbox"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a shiftkey.Store backed by one SQLite file.
type DB struct {
	// db checks that each write it commits reached the store's files
	// (files.go).
	db *checkedDB

	declaring sync.Mutex // Declaring: one application of the config at a time

	// The per-login lookups, prepared once: every gateway login runs them.
	saltStmt, credsStmt *sql.Stmt
	// The refresh of a cached login: which credentials are live, and
	// one credential the cached entry does not hold.
	liveIDsStmt, credStmt *sql.Stmt
	cache                 *credCache
	// salts remembers what LoginSalt returned: a login's salt never
	// changes while it exists; DeleteCluster drops the cluster's after its
	// commit, and a read racing it is not stored (gencache).
	salts *gencache.Map[loginKey, shiftkey.LoginSalt]
	// writer commits the issue path's writes in groups; see groupcommit.go.
	writer *groupWriter
	// checkpoints copies the WAL into the database; see checkpointer.go.
	checkpoints *checkpointer
	// outside notices revocations other processes commit; see outside.go.
	outside *outsideWrites
	closeMu sync.RWMutex
	closed  bool

	keys secretbox.Keyring // store keys held; see secrets.go
	// beforeKeyFile, when set (tests), runs before the store is asked
	// for the file of a key this process does not hold.
	beforeKeyFile func()
	// afterKeyFile, when set (tests), runs after the store has answered
	// that file, before it is read.
	afterKeyFile func()
}

var _ shiftkey.Store = (*DB)(nil)

// Open opens (creating if needed) the database at path and applies pending
// migrations. Writes use synchronous=FULL so that a committed credential
// survives a power loss: the API returns a password only after its verifier
// is on disk. No commit checkpoints the WAL: a goroutine of the store does
// (checkpointer.go). The files are 0600 (a store open to others is refused), and
// secure_delete zeroes what rows leave behind.
func Open(ctx context.Context, path string, opts ...Option) (*DB, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if err := prepareFiles(path); err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// Before the first connection: see openingStore.
	defer openingStore(path)()
	q := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)", "secure_delete(1)", "wal_autocheckpoint(0)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// Keep connections open between bursts: reopening one costs a file
	// open, the pragmas and a schema parse.
	db.SetMaxIdleConns(maxIdleConns)
	d := &DB{db: &checkedDB{DB: db}, cache: newCredCache(), salts: gencache.New[loginKey, shiftkey.LoginSalt](saltCacheMax)}
	if err := d.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate sqlite %s: %w", path, err)
	}
	if testHookMigrated != nil {
		testHookMigrated()
	}
	if err := d.initSecrets(ctx, o); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	if err := d.prepare(ctx); err != nil {
		d.Close()
		return nil, fmt.Errorf("prepare sqlite %s: %w", path, err)
	}
	if d.outside, err = newOutsideWrites(ctx, db, path); err != nil {
		d.Close()
		return nil, fmt.Errorf("sqlite %s: %w", path, err)
	}
	if d.checkpoints, err = newCheckpointer(ctx, db); err != nil {
		d.Close()
		return nil, fmt.Errorf("sqlite %s checkpointer: %w", path, err)
	}
	// The files are known once connections that stay open (the
	// checkpointer's, the writer's, the pool's) hold them: SQLite removes
	// the WAL when its last connection closes.
	d.db.files = openedFiles(path)
	if d.writer, err = newGroupWriter(ctx, d.db.files, db, d.key, d.committed, d.checkpoints); err != nil {
		d.Close()
		return nil, fmt.Errorf("sqlite %s writer: %w", path, err)
	}
	return d, nil
}

// testHookMigrated, in tests, runs in Open once the store's connections
// are open (its migrations ran on them), before it maps the WAL-index
// header.
var testHookMigrated func()

// maxIdleConns is how many connections the pool keeps open when idle
// (database/sql's default is 2: a burst of 64 reopened 62 per request).
const maxIdleConns = 64

// committed brings the cached logins of a committed batch up to date,
// before any of its writes is acknowledged: a stored credential joins its
// login's entry (the login that follows an issue is then answered from
// memory, however many live credentials the name has); any other write
// drops the entry.
func (d *DB) committed(batch []*shiftkey.IssueWrite, results []shiftkey.IssueWriteResult) {
	for i, op := range batch {
		if op.Credential != nil && results[i].Err == nil {
			added(d.cache, op.Credential)
		} else if op.Credential != nil {
			d.cache.Invalidate(loginKey{Cluster: op.Credential.Cluster, Login: op.Credential.LoginName})
		} else {
			d.cache.Invalidate(loginKey{Cluster: op.Salt.Cluster, Login: op.Salt.Login})
		}
	}
}

// write hands op to the group writer and waits until it is durable.
func (d *DB) write(ctx context.Context, op *shiftkey.IssueWrite) shiftkey.IssueWriteResult {
	d.closeMu.RLock()
	defer d.closeMu.RUnlock()
	if d.closed {
		return shiftkey.IssueWriteResult{Err: errClosed}
	}
	return d.writer.submit(ctx, op)
}

func (d *DB) prepare(ctx context.Context) error {
	var err error
	if d.saltStmt, err = d.db.PrepareContext(ctx, `SELECT salt, iterations FROM login_salts WHERE cluster = ? AND login_name = ?`); err != nil {
		return err
	}
	if d.credsStmt, err = d.db.PrepareContext(ctx, `SELECT `+credColumns+`
		FROM credentials WHERE cluster = ? AND login_name = ? AND expires_at > ?`); err != nil {
		return err
	}
	if d.liveIDsStmt, err = d.db.PrepareContext(ctx, `SELECT id FROM credentials WHERE cluster = ? AND login_name = ? AND expires_at > ?`); err != nil {
		return err
	}
	d.credStmt, err = d.db.PrepareContext(ctx, `SELECT `+credColumns+` FROM credentials WHERE id = ? AND cluster = ? AND login_name = ?`)
	return err
}

// credColumns are what a login's credential is read from (scanCredential).
const credColumns = `id, db_user, db_name, db_groups, auto_create, stored_key, server_key,
		digest_sha256, digest_md5, digests, principal_arn, coalesce(access_key_id, ''), coalesce(principal_id, ''), coalesce(role_arn, ''), session_created_at,
		request_id, created_at, expires_at`

// Close closes the database; writes still queued are committed first.
func (d *DB) Close() error {
	d.closeMu.Lock()
	again := d.closed
	d.closed = true
	d.closeMu.Unlock()
	if again { // the writer's and the checkpointer's channels are closed once
		return nil
	}
	if d.writer != nil {
		d.writer.close()
	}
	if d.checkpoints != nil {
		d.checkpoints.close()
	}
	if d.outside != nil {
		d.outside.close()
	}
	for _, st := range []*sql.Stmt{d.saltStmt, d.credsStmt, d.liveIDsStmt, d.credStmt} {
		if st != nil {
			st.Close()
		}
	}
	err := d.db.Close()
	// After the last write through d.db: its commits ask the probe too.
	d.db.files.close()
	if d.outside != nil {
		d.outside.release() // once the connections are closed
	}
	return err
}

func (d *DB) migrate(ctx context.Context) error {
	// schema_migrations: the migrations a shiftkey must know to serve the
	// store (every version checks it); schema_additive_migrations: those an
	// older one may leave unknown (migrate.Additive).
	if _, err := d.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY);
		CREATE TABLE IF NOT EXISTS schema_additive_migrations (name TEXT PRIMARY KEY)`); err != nil {
		return err
	}
	var applied []string
	rows, err := d.db.QueryContext(ctx, `SELECT name FROM schema_migrations`)
	if err != nil {
		return err
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		applied = append(applied, name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if err := migrate.CheckKnown(migrations, applied); err != nil {
		return err
	}
	return migrate.Apply(migrations, func(name, sql string) error { return d.migrateOne(ctx, name, sql) })
}

func (d *DB) migrateOne(ctx context.Context, name, migration string) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	additive := migrate.Additive(migration)
	var required, added bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = ?1),
		EXISTS (SELECT 1 FROM schema_additive_migrations WHERE name = ?1)`, name).Scan(&required, &added); err != nil {
		return err
	}
	switch {
	case added || required && !additive:
		return nil
	case required:
		// The build that introduced it recorded it as required: move it,
		// so that the versions before it open this store again.
		if _, err := tx.ExecContext(ctx, `DELETE FROM schema_migrations WHERE name = ?`, name); err != nil {
			return err
		}
	default:
		if _, err := tx.ExecContext(ctx, migration); err != nil {
			return err
		}
	}
	table := "schema_migrations"
	if additive {
		table = "schema_additive_migrations"
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO `+table+` (name) VALUES (?)`, name); err != nil {
		return err
	}
	return tx.Commit()
}

func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
	}
	return false
}

// isForeignKeyViolation: a row named a parent another call deleted.
func isForeignKeyViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

func millis(t time.Time) int64 { return t.UnixMilli() }
func fromMillis(ms int64) time.Time {
	return time.UnixMilli(ms).UTC()
}

// Clusters.

const clusterColumns = `identifier, namespace_id, node_type, db_name, master_username, status,
	endpoint_address, endpoint_port, backend_host, backend_port, backend_admin_user, backend_managed, created_at, backend_login, region`

func clusterArgs(c *shiftkey.Cluster) []any {
	return []any{c.Identifier, c.NamespaceID, c.NodeType, c.DBName, c.MasterUsername, c.Status,
		c.Endpoint.Address, c.Endpoint.Port, c.Backend.Host, c.Backend.Port, c.Backend.AdminUser, c.Backend.Managed, millis(c.CreatedAt), c.Backend.Login,
		regionOrDefault(c.Region)}
}

// regionOrDefault is the region a resource is stored with: its own, or the
// default region when the caller left it empty.
func regionOrDefault(r string) string {
	if r == "" {
		return shiftkey.DefaultRegion
	}
	return r
}

func scanCluster(row scanner) (*shiftkey.Cluster, error) {
	var c shiftkey.Cluster
	var created int64
	err := row.Scan(&c.Identifier, &c.NamespaceID, &c.NodeType, &c.DBName, &c.MasterUsername, &c.Status,
		&c.Endpoint.Address, &c.Endpoint.Port, &c.Backend.Host, &c.Backend.Port, &c.Backend.AdminUser, &c.Backend.Managed, &created, &c.Backend.Login, &c.Region)
	if err != nil {
		return nil, err
	}
	c.CreatedAt = fromMillis(created)
	return &c, nil
}

// CreateCluster stores a new cluster.
func (d *DB) CreateCluster(ctx context.Context, c *shiftkey.Cluster) error {
	return d.insert(ctx, shiftkey.ClusterExists(),
		`INSERT INTO clusters (`+clusterColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`, clusterArgs(c)...)
}

// UpdateCluster replaces the stored fields of an existing cluster.
func (d *DB) UpdateCluster(ctx context.Context, c *shiftkey.Cluster) error {
	args := append(clusterArgs(c)[1:], c.Identifier)
	return d.execOne(ctx, clusterNotFound(c.Identifier), `UPDATE clusters SET namespace_id=?, node_type=?, db_name=?, master_username=?, status=?,
		endpoint_address=?, endpoint_port=?, backend_host=?, backend_port=?, backend_admin_user=?, backend_managed=?, created_at=?,
		backend_login=?, region=? WHERE identifier=?`, args...)
}

func clusterNotFound(id string) error {
	return shiftkey.ClusterNotFound(id)
}

// Cluster returns the cluster with identifier id (case-sensitive).
func (d *DB) Cluster(ctx context.Context, id string) (*shiftkey.Cluster, error) {
	return queryOne(ctx, d.db, scanCluster, clusterNotFound(id), `SELECT `+clusterColumns+` FROM clusters WHERE identifier = ?`, id)
}

// Clusters returns every cluster ordered by identifier.
func (d *DB) Clusters(ctx context.Context) ([]*shiftkey.Cluster, error) {
	return queryAll(ctx, d.db, scanCluster, `SELECT `+clusterColumns+` FROM clusters ORDER BY identifier`)
}

// DeleteCluster removes a cluster, its credentials, salts, tags and custom
// domains.
func (d *DB) DeleteCluster(ctx context.Context, id string) error {
	// Deferred first so it runs last, after the commit or rollback.
	defer d.cache.InvalidateIf(func(k loginKey) bool { return k.Cluster == id })
	defer d.salts.DropIf(func(k loginKey) bool { return k.Cluster == id })
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM clusters WHERE identifier = ?`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return clusterNotFound(id)
	}
	for _, q := range []string{`DELETE FROM credentials WHERE cluster = ?`, `DELETE FROM login_salts WHERE cluster = ?`,
		`DELETE FROM tags WHERE kind = 'cluster' AND owner = ?`, `DELETE FROM custom_domains WHERE kind = 'cluster' AND target = ?`} {
		if _, err := tx.ExecContext(ctx, q, id); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Credentials.

// DeleteCredentials removes every credential of (cluster, login).
func (d *DB) DeleteCredentials(ctx context.Context, cluster, login string) error {
	_, err := d.db.ExecContext(ctx, `DELETE FROM credentials WHERE cluster = ? AND login_name = ?`, cluster, login)
	d.cache.Invalidate(loginKey{Cluster: cluster, Login: login})
	return err
}

// HasLoginSalts reports whether any login has a salt: a name that was
// issued a credential, whose salt a gateway offers from then on instead of
// the decoy its gateway secret derives (server.GatewayKeyFile).
func (d *DB) HasLoginSalts(ctx context.Context) (bool, error) {
	var found bool
	err := d.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM login_salts)`).Scan(&found)
	return found, err
}

// LoginIterations returns the distinct iteration counts of cluster's
// login salts (shiftkey.SaltIterations), ascending: a scan of the
// cluster's salts, which a gateway makes every few minutes.
func (d *DB) LoginIterations(ctx context.Context, cluster string) ([]int, error) {
	return queryAll(ctx, d.db, func(r scanner) (n int, err error) { return n, r.Scan(&n) },
		`SELECT DISTINCT iterations FROM login_salts WHERE cluster = ? ORDER BY iterations`, cluster)
}

// LoginSalt returns the salt of (cluster, login), storing fresh if none
// exists. A salt that exists is only read: no write lock, no fsync.
func (d *DB) LoginSalt(ctx context.Context, cluster, login, scopeID string, fresh shiftkey.LoginSalt) (shiftkey.LoginSalt, error) {
	k := loginKey{Cluster: cluster, Login: login}
	s, ok, gen := d.salts.Get(k)
	if ok {
		// The issue's credential follows (groupcommit.go).
		d.writer.q.Expect()
		return s, nil
	}
	err := d.saltStmt.QueryRowContext(ctx, cluster, login).Scan(&s.Salt, &s.Iterations)
	if errors.Is(err, sql.ErrNoRows) {
		// INSERT OR IGNORE then SELECT, in the writer's transaction, keeps
		// concurrent issuers on one salt; the transaction finds the scope
		// there or writes nothing (scopeExists).
		r := d.write(ctx, &shiftkey.IssueWrite{Salt: &shiftkey.SaltWrite{Cluster: cluster, Login: login, ScopeID: scopeID, Fresh: fresh}})
		s, err = r.Salt, r.Err
	}
	if err != nil {
		return shiftkey.LoginSalt{}, err
	}
	d.salts.Put(k, s, gen)
	d.writer.q.Expect()
	return s, nil
}

// WriteErr is why the next write would fail (shiftkey.WriteHealth, what
// /readyz reports): the store's files deleted or replaced, or their file
// system failed, both asked now rather than at the next write (a store
// without issues would stay ready for its balancer); else the failure of
// the issue path's last write while none has committed since.
func (d *DB) WriteErr() error {
	if err := d.db.files.committed(); err != nil {
		return err
	}
	return d.writer.health.Err()
}

// CreateCredential stores c; the commit is durable when it returns.
func (d *DB) CreateCredential(ctx context.Context, c *shiftkey.Credential) error {
	return d.write(ctx, &shiftkey.IssueWrite{Credential: c}).Err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// LiveCredentials returns the unexpired credentials of (cluster, login) and
// its salt. Every gateway login calls it, so answers come from d.cache when
// they can (see credCache for why that is safe), without a copy: the
// slice is the cache's, which callers only read (appending to it copies).
// A revocation another process committed before the call is seen
// (CatchUp).
func (d *DB) LiveCredentials(ctx context.Context, cluster, login string, now time.Time) ([]*shiftkey.Credential, shiftkey.LoginSalt, bool, error) {
	d.CatchUp()
	k, nowMs := loginKey{Cluster: cluster, Login: login}, millis(now)
	e, old, gen := d.cache.Get(k, nowMs)
	if e == nil {
		err := secretbox.RereadAfterRotation(func() (err error) { e, err = d.readCredentials(ctx, cluster, login, nowMs, old); return err })
		if err != nil {
			return nil, shiftkey.LoginSalt{}, false, err
		}
		d.cache.Put(k, e, gen)
	}
	if !e.Known {
		return nil, shiftkey.LoginSalt{}, false, nil
	}
	return d.cache.Live(k, e, nowMs), e.Salt, true, nil
}

// readCredentials queries the salt and the credentials unexpired at nowMs.
// The credentials of old, an earlier read of the login that a write or
// its age made stale, are reused where still live: a credential never
// changes once stored, so a refresh of a login with thousands of them
// reads their ids, not their keys, groups and sealed digests again.
func (d *DB) readCredentials(ctx context.Context, cluster, login string, nowMs int64, old *credEntry) (*credEntry, error) {
	var salt shiftkey.LoginSalt
	err := d.saltStmt.QueryRowContext(ctx, cluster, login).Scan(&salt.Salt, &salt.Iterations)
	if errors.Is(err, sql.ErrNoRows) {
		return d.cache.Entry(false, salt, nil, nowMs), nil
	}
	if err != nil {
		return nil, err
	}
	var creds []*shiftkey.Credential
	if old != nil && len(old.Creds) > 0 {
		creds, err = d.rereadCredentials(ctx, cluster, login, nowMs, old.Creds)
	} else {
		creds, err = d.readAllCredentials(ctx, cluster, login, nowMs)
	}
	if err != nil {
		return nil, err
	}
	// Ordered here, not by the query: the index yields rows by expiry, and
	// SQLite's sorter spills a login's thousands of rows to a temporary
	// file (a third of an uncached read of 10,000).
	byCreation := func(a, b *shiftkey.Credential) int { return a.CreatedAt.Compare(b.CreatedAt) }
	if !slices.IsSortedFunc(creds, byCreation) {
		slices.SortStableFunc(creds, byCreation)
	}
	return d.cache.Entry(true, salt, creds, nowMs), nil
}

func (d *DB) readAllCredentials(ctx context.Context, cluster, login string, nowMs int64) ([]*shiftkey.Credential, error) {
	rows, err := d.credsStmt.QueryContext(ctx, cluster, login, nowMs)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var creds []*shiftkey.Credential
	for rows.Next() {
		c, err := d.scanCredential(ctx, rows, cluster, login)
		if err != nil {
			return nil, err
		}
		creds = append(creds, c)
	}
	return creds, rows.Err()
}

// maxReread is how many credentials a refresh reads one by one before a
// full read is cheaper.
const maxReread = 256

// rereadCredentials is the live credentials in the order the full read
// yields them, taking those of known that are still live from it.
func (d *DB) rereadCredentials(ctx context.Context, cluster, login string, nowMs int64, known []*shiftkey.Credential) ([]*shiftkey.Credential, error) {
	rr := gencache.NewReread(known, credID)
	rows, err := d.liveIDsStmt.QueryContext(ctx, cluster, login, nowMs)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var id sql.RawBytes // valid until Next
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		rr.Add(id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(rr.Unknown()) > maxReread {
		return d.readAllCredentials(ctx, cluster, login, nowMs)
	}
	creds, _, err := rr.Fill(func(id string) (*shiftkey.Credential, bool, error) {
		c, err := d.scanCredential(ctx, d.credStmt.QueryRowContext(ctx, id, cluster, login), cluster, login)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, false, nil // deleted since the ids were read
		}
		return c, err == nil, err
	})
	return creds, err
}

func credID(c *shiftkey.Credential) string { return c.ID }

// scanCredential reads one credential of credColumns.
func (d *DB) scanCredential(ctx context.Context, row scanner, cluster, login string) (*shiftkey.Credential, error) {
	c := &shiftkey.Credential{Cluster: cluster, LoginName: login}
	var groups string
	var created, expires int64
	var digests sql.NullString
	var sessionCreated sql.NullInt64
	if err := row.Scan(&c.ID, &c.DBUser, &c.DBName, &groups, &c.AutoCreate, &c.StoredKey, &c.ServerKey,
		&c.DigestSHA256, &c.DigestMD5, &digests, &c.PrincipalARN, &c.AccessKeyID, &c.IssuedTo.PrincipalID, &c.IssuedTo.RoleARN, &sessionCreated,
		&c.RequestID, &created, &expires); err != nil {
		return nil, err
	}
	if sessionCreated.Valid { // NULL: a user's, or issued before it was kept
		c.IssuedTo.SessionCreatedAt = fromMillis(sessionCreated.Int64)
	}
	if digests.Valid {
		var err error
		if c.DigestSHA256, c.DigestMD5, err = d.openDigests(ctx, d.db, c.ID, digests.String); err != nil {
			return nil, err
		}
	}
	if err := json.Unmarshal([]byte(groups), &c.DBGroups); err != nil {
		return nil, fmt.Errorf("credential %s groups: %w", c.ID, err)
	}
	c.CreatedAt, c.ExpiresAt = fromMillis(created), fromMillis(expires)
	return c, nil
}

// DeleteExpiredCredentials removes credentials that expired before t.
func (d *DB) DeleteExpiredCredentials(ctx context.Context, t time.Time) (int, error) {
	if _, err := d.db.ExecContext(ctx, `DELETE FROM credential_revocations WHERE expires_at <= ?`, millis(t)); err != nil {
		return 0, err
	}
	res, err := d.db.ExecContext(ctx, `DELETE FROM credentials WHERE expires_at <= ?`, millis(t))
	// Cached entries hold credentials unexpired at their read time, which
	// may be before t.
	d.cache.InvalidateIf(nil)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// scanner is a *sql.Row or *sql.Rows.
type scanner = rowscan.Row

// rowsQuerier is a *sql.DB or a *sql.Tx.
type rowsQuerier interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}

// queryOne runs q and scans its one row with scan; no row is notFound.
func queryOne[T any](ctx context.Context, db querier, scan func(scanner) (T, error), notFound error, q string, args ...any) (T, error) {
	v, err := scan(db.QueryRowContext(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		var zero T
		return zero, notFound
	}
	return v, err
}

// byName is a table of resources found by their name column: it reads,
// lists (by name) and deletes them, a missing one being notFound's error.
type byName[T any] struct {
	table, columns string
	scan           func(scanner) (T, error)
	notFound       func(name string) error
}

func (t byName[T]) get(ctx context.Context, db querier, name string) (T, error) {
	return queryOne(ctx, db, t.scan, t.notFound(name), `SELECT `+t.columns+` FROM `+t.table+` WHERE name = ?`, name)
}

func (t byName[T]) list(ctx context.Context, db rowsQuerier) ([]T, error) {
	return queryAll(ctx, db, t.scan, `SELECT `+t.columns+` FROM `+t.table+` ORDER BY name`)
}

func (t byName[T]) delete(ctx context.Context, d *DB, name string) error {
	return d.execOne(ctx, t.notFound(name), `DELETE FROM `+t.table+` WHERE name = ?`, name)
}

// insert runs an INSERT whose unique violation is conflict.
func (d *DB) insert(ctx context.Context, conflict error, q string, args ...any) error {
	_, err := d.db.ExecContext(ctx, q, args...)
	if isUniqueViolation(err) {
		return conflict
	}
	return err
}

// execOne runs a statement that must change one row; none is notFound.
func (d *DB) execOne(ctx context.Context, notFound error, q string, args ...any) error {
	res, err := d.db.ExecContext(ctx, q, args...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return notFound
	}
	return nil
}

// queryAll runs q and scans every row with scan.
func queryAll[T any](ctx context.Context, db rowsQuerier, scan func(scanner) (T, error), q string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return rowscan.All(rows, scan)
}
