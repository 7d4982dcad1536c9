// Package postgres implements shiftkey.Store on a PostgreSQL database
// shared by every replica of shiftkey (pgx). Each write is one transaction
// that also NOTIFYs what it changed, so that the other replicas' caches
// and gateways learn of it (see feed.go). The issue path's writes (new
// credentials and salts) are the exception: committed in groups,
// announcing nothing (see groupcommit.go); logins served from memory
// allow for that (credcache.go).
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/migrate"
	"github.com/shiftkey/shiftkey/rowscan"
	"github.com/shiftkey/shiftkey/secretbox"
)

//go:embed migrations/*.sql
var migrations embed.FS

// DB is a shiftkey.Store on one PostgreSQL database.
type DB struct {
	// pool tells the store's outages apart (outage.go).
	pool storePool
	// origin names this process in the change feed, so that it skips its
	// own notifications, and owns its session grants: host/pid/uuid, so
	// that whoever reads a dead replica's name (a reconciled revoke's
	// audit record) can tell which it was.
	origin string
	keys   secretbox.Keyring
	feed   *feed
	lease  *leaser
	opts   options
	// writer commits the issue path's writes in groups (groupcommit.go).
	writer *groupWriter
	salts  *saltCache
	// creds serves logins from memory (credcache.go).
	creds     *credCache
	credReads atomic.Uint64 // reads of a login's credentials (tests)
	// advertised are this process's gateways (scope to address) that the
	// leaser keeps in gateway_peers, writing them again if they went.
	advMu      sync.Mutex
	advertised map[string]string
	clock      storeClock // the store's time (clock.go)
	// noIdleCheck turns closedByServer off (tests of the retry of what
	// was not sent).
	noIdleCheck atomic.Bool
	// beforeKeyFile, when set (tests), runs before the store is asked
	// for the file of a key this process does not hold.
	beforeKeyFile func()
}

// closedByServer is whether c, idle, was closed by the server
// (idle_unix.go).
func (d *DB) closedByServer(c *pgx.Conn) bool {
	return !d.noIdleCheck.Load() && closedByServer(c.PgConn().Conn())
}

var (
	_ shiftkey.Store         = (*DB)(nil)
	_ shiftkey.ChangeSource  = (*DB)(nil)
	_ shiftkey.DeclaredStore = (*DB)(nil)
)

// DefaultMaxConns is the least pool size (pgxpool's own default is the
// larger of 4 and the number of CPUs): logins the cache cannot answer
// (credcache.go) read credentials, one query each, and 64 concurrent
// logins on 4 connections queue behind each other. The group writer has its own
// connection besides the pool.
const DefaultMaxConns = 16

// migrationLock is the advisory lock key replicas starting together take
// so that one of them migrates ("shiftkey" in ASCII).
const migrationLock int64 = 0x73686966746b6579

// Open connects to the database at url (a libpq URL or key/value string),
// applies pending migrations, checks the store key and starts listening
// for other replicas' changes. Close releases it all.
func Open(ctx context.Context, url string, opts ...Option) (*DB, error) {
	o := options{lease: DefaultGrantLease, local: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") {
		cfg.MaxConns = max(cfg.MaxConns, DefaultMaxConns)
	}
	if o.maxConns > 0 {
		cfg.MaxConns = o.maxConns
	}
	origin := shiftkey.ProcessName()
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		// pg_stat_activity names the replica behind each connection: the
		// holder of a lock another replica waits for (withSessionLock).
		cfg.ConnConfig.RuntimeParams["application_name"] = "shiftkey " + origin
	}
	cfg.AfterConnect = setUpSession
	// A connection a hot standby refused a write on (25006: the store's
	// address reaches a standby while the store fails over) is closed, as
	// one that got a FATAL is (pgconn's default): the pool's next
	// connection, and the group writer's, reach whichever server the
	// address names by then, where a pool would keep it for an hour.
	cfg.ConnConfig.OnPgError = func(_ *pgconn.PgConn, pe *pgconn.PgError) bool {
		return !strings.EqualFold(pe.Severity, "FATAL") && pe.Code != "25006"
	}
	d := &DB{origin: origin, opts: o, salts: newSaltCache(), creds: newCredCache()}
	// A connection the server closed while it was idle (the store
	// restarted) is replaced before a query is sent on it: sent, the query
	// would fail with the server's goodbye, or a broken pipe, and the call
	// with ServiceUnavailable (pgxpool pings only connections idle over 1 s).
	cfg.PrepareConn = func(_ context.Context, c *pgx.Conn) (bool, error) {
		return !d.closedByServer(c), nil
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	d.pool = storePool{pool}
	if err := d.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("migrate postgres store: %w", err)
	}
	if err := d.initSecrets(ctx, o); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store: %w", err)
	}
	d.clock.recheck = make(chan struct{}, 1)
	if err := d.readClock(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store: read its clock: %w", err)
	}
	if d.feed, err = startFeed(ctx, cfg.ConnConfig.Copy(), d.origin); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres store: listen: %w", err)
	}
	d.feed.ping = func(ctx context.Context, payload string) error {
		_, err := d.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, Channel, payload)
		return err
	}
	d.Subscribe(d.salts.changed)
	d.Subscribe(d.credsChanged)
	d.writer = startGroupWriter(d, cfg.ConnConfig.Copy(), o.key)
	d.lease = startLeaser(d, o.lease)
	return d, nil
}

// Origin is this process's id in the change feed and on its grants.
func (d *DB) Origin() string { return d.origin }

// Close stops the feed and the lease renewal and closes the pool.
func (d *DB) Close() error {
	if d.lease != nil {
		d.lease.stop()
		// Peers stop forwarding cancel requests here at once, not at the
		// lease's end.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		d.pool.Exec(ctx, `DELETE FROM gateway_peers WHERE owner = $1`, d.origin)
		cancel()
	}
	if d.writer != nil {
		d.writer.close()
	}
	if d.feed != nil {
		d.feed.stop()
	}
	d.pool.Close()
	return nil
}

func (d *DB) migrate(ctx context.Context) error {
	if d.opts.asIs {
		return d.checkMigrated(ctx)
	}
	// Replicas starting at once: one migrates, the others wait and then
	// find nothing to do.
	return d.withSessionLock(ctx, migrationLock, "migrations", func(conn *pgx.Conn) error {
		// schema_migrations: the migrations a shiftkey must know to serve
		// the store (every version checks it); schema_additive_migrations:
		// those an older one may leave unknown (migrate.Additive).
		if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (name text PRIMARY KEY);
			CREATE TABLE IF NOT EXISTS schema_additive_migrations (name text PRIMARY KEY)`); err != nil {
			return err
		}
		var applied []string
		if err := conn.QueryRow(ctx, `SELECT coalesce(array_agg(name), '{}') FROM schema_migrations`).Scan(&applied); err != nil {
			return err
		}
		if err := migrate.CheckKnown(migrations, applied); err != nil {
			return err
		}
		return migrate.Apply(migrations, func(name, sql string) error { return migrateOne(ctx, conn, name, sql) })
	})
}

// checkMigrated fails unless the store has every migration of this
// version and none this version does not know; it writes nothing.
func (d *DB) checkMigrated(ctx context.Context) error {
	var required, additive []string
	for _, t := range []struct {
		table string
		names *[]string
	}{{"schema_migrations", &required}, {"schema_additive_migrations", &additive}} {
		// A table no replica has made yet is none of its migrations.
		var exists bool
		if err := d.pool.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, t.table).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			continue
		}
		if err := d.pool.QueryRow(ctx, `SELECT coalesce(array_agg(name), '{}') FROM `+t.table).Scan(t.names); err != nil {
			return err
		}
	}
	if err := migrate.CheckKnown(migrations, required); err != nil {
		return err
	}
	pending, err := migrate.Pending(migrations, append(required, additive...))
	if err != nil || len(pending) == 0 {
		return err
	}
	lacks := strings.Join(pending, ", ")
	if len(pending) == len(required)+len(additive)+len(pending) {
		lacks = fmt.Sprintf("all %d: no shiftkey has served it yet", len(pending))
	}
	return fmt.Errorf("%w (it lacks %s): start a replica of this version on it first (replicas migrate the store at start; see docs/deployment.md, Upgrading), or run this command with the replicas' shiftkey",
		ErrNotMigrated, lacks)
}

// withSessionLock runs fn holding the session advisory lock key (what it
// guards: what) on a connection of its own, which fn may use: one process
// at a time of all those sharing the store. A wait for another process's
// lock is logged with the holder: a replica paused or hung while holding
// it (its connection stays open) would otherwise stall this one's start in
// silence.
func (d *DB) withSessionLock(ctx context.Context, key int64, what string, fn func(*pgx.Conn) error) error {
	conn, err := d.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got); err != nil {
		return err
	}
	if !got {
		start := time.Now()
		var pid int32
		var holder, addr string
		// A bigint key is held as classid (high 32 bits), objid (low), objsubid 1.
		err := conn.QueryRow(ctx, `SELECT a.pid, coalesce(a.application_name, ''), coalesce(host(a.client_addr), 'local')
			FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
			WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
			AND l.classid = ($1::bigint >> 32)::oid AND l.objid = ($1::bigint & 4294967295)::oid LIMIT 1`, key).Scan(&pid, &holder, &addr)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		slog.Default().Warn("waiting for the store lock another process holds", "lock", what, "holder", holder, "holder_pid", pid, "holder_addr", addr)
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
			return err
		}
		slog.Default().Info("store lock taken", "lock", what, "waited", time.Since(start).Round(time.Millisecond).String())
	}
	defer func() {
		if _, err := conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key); err != nil {
			// A lock left held would stall the next replica: drop the
			// connection, and the lock with it.
			conn.Conn().Close(context.Background())
		}
	}()
	return fn(conn.Conn())
}

func migrateOne(ctx context.Context, conn *pgx.Conn, name, migration string) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	additive := migrate.Additive(migration)
	var required, added bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = $1),
		EXISTS (SELECT 1 FROM schema_additive_migrations WHERE name = $1)`, name).Scan(&required, &added); err != nil {
		return err
	}
	switch {
	case added || required && !additive:
		return nil
	case required:
		// The build that introduced it recorded it as required: move it,
		// so that the versions before it start on this store again.
		if _, err := tx.Exec(ctx, `DELETE FROM schema_migrations WHERE name = $1`, name); err != nil {
			return err
		}
	default:
		if _, err := tx.Exec(ctx, migration); err != nil {
			return err
		}
	}
	table := "schema_migrations"
	if additive {
		table = "schema_additive_migrations"
	}
	if _, err := tx.Exec(ctx, `INSERT INTO `+table+` (name) VALUES ($1)`, name); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// SQLSTATEs the store maps to AWS errors.
const (
	uniqueViolation = "23505"
	// foreignKeyViolation: a row named a parent another call deleted.
	foreignKeyViolation = "23503"
)

func isCode(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}

// stmt is one statement of a write.
type stmt struct {
	sql  string
	args []any
}

func st(sql string, args ...any) stmt { return stmt{sql, args} }

// write runs stmts and a NOTIFY of each change as one implicit
// transaction in one round trip (a pipelined batch), and returns how many
// rows each statement affected.
func (d *DB) write(ctx context.Context, changes []shiftkey.Change, stmts ...stmt) ([]int64, error) {
	b := &pgx.Batch{}
	for _, s := range stmts {
		b.Queue(s.sql, s.args...)
	}
	for _, c := range changes {
		b.Queue(`SELECT pg_notify($1, $2)`, Channel, d.feed.encode(c))
	}
	br := d.pool.SendBatch(ctx, b)
	n := make([]int64, len(stmts))
	var err error
	for i := range stmts {
		var tag pgconn.CommandTag
		if tag, err = br.Exec(); err != nil {
			break
		}
		n[i] = tag.RowsAffected()
	}
	if err == nil {
		for range changes {
			if _, err = br.Exec(); err != nil {
				break
			}
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// writeOne runs one statement with its changes; no row affected is
// notFound (when not nil), a unique violation conflict (when not nil).
func (d *DB) writeOne(ctx context.Context, notFound, conflict error, changes []shiftkey.Change, sql string, args ...any) error {
	n, err := d.write(ctx, changes, st(sql, args...))
	switch {
	case err != nil && conflict != nil && isCode(err, uniqueViolation):
		return conflict
	case err != nil:
		return err
	case notFound != nil && n[0] == 0:
		return notFound
	}
	return nil
}

// inTx runs f in a transaction that also NOTIFYs changes (those f adds
// too) when it commits.
func (d *DB) inTx(ctx context.Context, f func(tx pgx.Tx, notify func(...shiftkey.Change)) error) error {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	var changes []shiftkey.Change
	if err := f(tx, func(c ...shiftkey.Change) { changes = append(changes, c...) }); err != nil {
		return err
	}
	for _, c := range changes {
		if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, Channel, d.feed.encode(c)); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

func change(kind shiftkey.EntityKind, name string) []shiftkey.Change {
	return []shiftkey.Change{{Kind: kind, Name: name}}
}

// queryOne runs q and scans its one row with scan; no row is notFound.
func queryOne[T any](ctx context.Context, q querier, scan func(pgx.Row) (T, error), notFound error, sql string, args ...any) (T, error) {
	v, err := scan(q.QueryRow(ctx, sql, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		var zero T
		return zero, notFound
	}
	return v, err
}

// queryAll runs q and scans every row with scan.
func queryAll[T any](ctx context.Context, q querier, scan func(pgx.Row) (T, error), sql string, args ...any) ([]T, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	return rowscan.All(closer{rows}, func(r rowscan.Row) (T, error) { return scan(r) })
}

// closer gives pgx's rows the Close of database/sql's, for rowscan.
type closer struct{ pgx.Rows }

func (r closer) Close() error {
	r.Rows.Close()
	return nil
}

// byName is a table of resources found by their name column: it reads,
// lists (by name, in code point order) and deletes them, a missing one
// being notFound's error. A delete tells the change of kind, under the
// name as told returns it (nil: as given).
type byName[T any] struct {
	table, columns string
	scan           func(pgx.Row) (T, error)
	notFound       func(name string) error
	kind           shiftkey.EntityKind
	told           func(name string) string
}

func (t byName[T]) get(ctx context.Context, db querier, name string) (T, error) {
	return queryOne(ctx, db, t.scan, t.notFound(name), `SELECT `+t.columns+` FROM `+t.table+` WHERE name = $1`, name)
}

func (t byName[T]) list(ctx context.Context, db querier) ([]T, error) {
	return queryAll(ctx, db, t.scan, `SELECT `+t.columns+` FROM `+t.table+` ORDER BY name COLLATE "C"`)
}

func (t byName[T]) delete(ctx context.Context, d *DB, name string) error {
	told := name
	if t.told != nil {
		told = t.told(name)
	}
	return d.writeOne(ctx, t.notFound(name), nil, change(t.kind, told), `DELETE FROM `+t.table+` WHERE name = $1`, name)
}

// querier is the pool or a transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func utc(t time.Time) time.Time { return t.UTC() }

// regionOrDefault is the region a resource is stored with.
func regionOrDefault(r string) string {
	if r == "" {
		return shiftkey.DefaultRegion
	}
	return r
}

// Clusters.

const clusterColumns = `identifier, region, namespace_id, node_type, db_name, master_username, status,
	endpoint_address, endpoint_port, backend_host, backend_port, backend_admin_user, backend_managed, backend_login, created_at`

func clusterArgs(c *shiftkey.Cluster) []any {
	return []any{c.Identifier, regionOrDefault(c.Region), c.NamespaceID, c.NodeType, c.DBName, c.MasterUsername, c.Status,
		c.Endpoint.Address, c.Endpoint.Port, c.Backend.Host, c.Backend.Port, c.Backend.AdminUser, c.Backend.Managed, c.Backend.Login, c.CreatedAt}
}

func scanCluster(row pgx.Row) (*shiftkey.Cluster, error) {
	var c shiftkey.Cluster
	err := row.Scan(&c.Identifier, &c.Region, &c.NamespaceID, &c.NodeType, &c.DBName, &c.MasterUsername, &c.Status,
		&c.Endpoint.Address, &c.Endpoint.Port, &c.Backend.Host, &c.Backend.Port, &c.Backend.AdminUser, &c.Backend.Managed, &c.Backend.Login, &c.CreatedAt)
	c.CreatedAt = utc(c.CreatedAt)
	return &c, err
}

func clusterNotFound(id string) error {
	return shiftkey.ClusterNotFound(id)
}

// CreateCluster stores a new cluster.
func (d *DB) CreateCluster(ctx context.Context, c *shiftkey.Cluster) error {
	return d.writeOne(ctx, nil, shiftkey.ClusterExists(), change(shiftkey.KindCluster, c.Identifier),
		`INSERT INTO clusters (`+clusterColumns+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15)`, clusterArgs(c)...)
}

// UpdateCluster replaces the stored fields of an existing cluster.
func (d *DB) UpdateCluster(ctx context.Context, c *shiftkey.Cluster) error {
	return d.writeOne(ctx, clusterNotFound(c.Identifier), nil, change(shiftkey.KindCluster, c.Identifier),
		`UPDATE clusters SET region=$2, namespace_id=$3, node_type=$4, db_name=$5, master_username=$6, status=$7,
		endpoint_address=$8, endpoint_port=$9, backend_host=$10, backend_port=$11, backend_admin_user=$12, backend_managed=$13,
		backend_login=$14, created_at=$15 WHERE identifier=$1`, clusterArgs(c)...)
}

// Cluster returns the cluster with identifier id (case-sensitive).
func (d *DB) Cluster(ctx context.Context, id string) (*shiftkey.Cluster, error) {
	return queryOne(ctx, d.pool, scanCluster, clusterNotFound(id), `SELECT `+clusterColumns+` FROM clusters WHERE identifier = $1`, id)
}

// Clusters returns every cluster ordered by identifier.
func (d *DB) Clusters(ctx context.Context) ([]*shiftkey.Cluster, error) {
	return queryAll(ctx, d.pool, scanCluster, `SELECT `+clusterColumns+` FROM clusters ORDER BY identifier COLLATE "C"`)
}

// DeleteCluster removes a cluster, its credentials, salts, tags and custom
// domains.
func (d *DB) DeleteCluster(ctx context.Context, id string) error {
	err := d.inTx(ctx, func(tx pgx.Tx, notify func(...shiftkey.Change)) error {
		// Ordered with the issue writer's batches (lockScope): none
		// writes a credential of the cluster after this deleted them.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, scopeLock); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM clusters WHERE identifier = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return clusterNotFound(id)
		}
		for _, q := range []string{`DELETE FROM credentials WHERE cluster = $1`, `DELETE FROM login_salts WHERE cluster = $1`,
			`DELETE FROM tags WHERE kind = 'cluster' AND owner = $1`, `DELETE FROM custom_domains WHERE kind = 'cluster' AND target = $1`} {
			if _, err := tx.Exec(ctx, q, id); err != nil {
				return err
			}
		}
		notify(shiftkey.Change{Kind: shiftkey.KindCluster, Name: id}, shiftkey.Change{Kind: shiftkey.KindCredential}, shiftkey.Change{Kind: shiftkey.KindDomain})
		return nil
	})
	d.salts.dropCluster(id) // even on an error: it may have committed
	d.creds.InvalidateIf(func(k loginKey) bool { return k.Cluster == id })
	return err
}
