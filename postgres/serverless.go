package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/shiftkey/shiftkey"
)

const namespaceColumns = `name, id, db_name, admin_username, status, created_at, region`

var namespaces = byName[*shiftkey.Namespace]{"namespaces", namespaceColumns, scanNamespace, shiftkey.NamespaceNotFound, shiftkey.KindNamespace, nil}

func scanNamespace(row pgx.Row) (*shiftkey.Namespace, error) {
	var n shiftkey.Namespace
	err := row.Scan(&n.Name, &n.ID, &n.DBName, &n.AdminUsername, &n.Status, &n.CreatedAt, &n.Region)
	n.CreatedAt = utc(n.CreatedAt)
	return &n, err
}

// CreateNamespace stores a namespace.
func (d *DB) CreateNamespace(ctx context.Context, n *shiftkey.Namespace) error {
	return d.writeOne(ctx, nil, shiftkey.NamespaceExists(n.Name), change(shiftkey.KindNamespace, n.Name),
		`INSERT INTO namespaces (`+namespaceColumns+`) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
		n.Name, n.ID, n.DBName, n.AdminUsername, n.Status, n.CreatedAt, regionOrDefault(n.Region))
}

// Namespace returns a namespace by name.
func (d *DB) Namespace(ctx context.Context, name string) (*shiftkey.Namespace, error) {
	return namespaces.get(ctx, d.pool, name)
}

// Namespaces lists namespaces by name.
func (d *DB) Namespaces(ctx context.Context) ([]*shiftkey.Namespace, error) {
	return namespaces.list(ctx, d.pool)
}

// DeleteNamespace removes a namespace.
func (d *DB) DeleteNamespace(ctx context.Context, name string) error {
	return namespaces.delete(ctx, d, name)
}

const workgroupColumns = `name, id, namespace, status, base_capacity, endpoint_address, endpoint_port,
	backend_host, backend_port, backend_admin_user, backend_managed, created_at, backend_login, region`

var workgroups = byName[*shiftkey.Workgroup]{"workgroups", workgroupColumns, scanWorkgroup, shiftkey.WorkgroupNotFound, shiftkey.KindWorkgroup, nil}

func scanWorkgroup(row pgx.Row) (*shiftkey.Workgroup, error) {
	var w shiftkey.Workgroup
	err := row.Scan(&w.Name, &w.ID, &w.Namespace, &w.Status, &w.BaseCapacity, &w.Endpoint.Address, &w.Endpoint.Port,
		&w.Backend.Host, &w.Backend.Port, &w.Backend.AdminUser, &w.Backend.Managed, &w.CreatedAt, &w.Backend.Login, &w.Region)
	w.CreatedAt = utc(w.CreatedAt)
	return &w, err
}

// CreateWorkgroup stores a workgroup.
func (d *DB) CreateWorkgroup(ctx context.Context, w *shiftkey.Workgroup) error {
	return d.writeOne(ctx, nil, shiftkey.WorkgroupExists(w.Name, w.Namespace),
		change(shiftkey.KindWorkgroup, w.Name), `INSERT INTO workgroups (`+workgroupColumns+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14)`,
		w.Name, w.ID, w.Namespace, w.Status, w.BaseCapacity, w.Endpoint.Address, w.Endpoint.Port,
		w.Backend.Host, w.Backend.Port, w.Backend.AdminUser, w.Backend.Managed, w.CreatedAt, w.Backend.Login, regionOrDefault(w.Region))
}

// UpdateWorkgroup replaces a workgroup's mutable fields.
func (d *DB) UpdateWorkgroup(ctx context.Context, w *shiftkey.Workgroup) error {
	return d.writeOne(ctx, shiftkey.WorkgroupNotFound(w.Name), nil, change(shiftkey.KindWorkgroup, w.Name),
		`UPDATE workgroups SET status = $1, base_capacity = $2, endpoint_address = $3, endpoint_port = $4, backend_host = $5, backend_port = $6,
		backend_admin_user = $7, backend_managed = $8, backend_login = $9, region = $10 WHERE name = $11`,
		w.Status, w.BaseCapacity, w.Endpoint.Address, w.Endpoint.Port, w.Backend.Host, w.Backend.Port, w.Backend.AdminUser, w.Backend.Managed, w.Backend.Login,
		regionOrDefault(w.Region), w.Name)
}

// Workgroup returns a workgroup by name.
func (d *DB) Workgroup(ctx context.Context, name string) (*shiftkey.Workgroup, error) {
	return workgroups.get(ctx, d.pool, name)
}

// Workgroups lists workgroups by name.
func (d *DB) Workgroups(ctx context.Context) ([]*shiftkey.Workgroup, error) {
	return workgroups.list(ctx, d.pool)
}

// DeleteWorkgroup removes a workgroup, its credentials, salts and custom
// domains, in one transaction (one batch).
func (d *DB) DeleteWorkgroup(ctx context.Context, name string) error {
	// Ordered with the issue writer's batches (lockScope), as DeleteCluster.
	// Its logins are keyed by its scope (Workgroup.CredentialScope): gone
	// with it, as a cluster's, rather than kept for good. The replicas
	// drop what they remember of credentials and salts (a KindCredential
	// change of no name).
	n, err := d.write(ctx, []shiftkey.Change{{Kind: shiftkey.KindWorkgroup, Name: name}, {Kind: shiftkey.KindDomain}, {Kind: shiftkey.KindCredential}},
		st(`SELECT pg_advisory_xact_lock($1)`, scopeLock),
		st(`DELETE FROM credentials WHERE cluster = $2 || (SELECT id FROM workgroups WHERE name = $1)`, name, shiftkey.WorkgroupScopePrefix),
		st(`DELETE FROM login_salts WHERE cluster = $2 || (SELECT id FROM workgroups WHERE name = $1)`, name, shiftkey.WorkgroupScopePrefix),
		st(`DELETE FROM workgroups WHERE name = $1`, name),
		st(`DELETE FROM custom_domains WHERE kind = 'workgroup' AND target = $1`, name))
	// Any workgroup's, for the id was read in the transaction; even on an
	// error: it may have committed.
	d.salts.dropCluster("")
	d.creds.InvalidateIf(func(k loginKey) bool { return strings.HasPrefix(k.Cluster, shiftkey.WorkgroupScopePrefix) })
	if err == nil && n[3] == 0 {
		return shiftkey.WorkgroupNotFound(name)
	}
	return err
}

// Custom domains.

const domainColumns = `name, cert_arn, kind, target, cert_expiry`

// customDomains' names are stored, and their changes told, in lower case.
var customDomains = byName[*shiftkey.CustomDomain]{"custom_domains", domainColumns, scanDomain, shiftkey.DomainNotAssociated, shiftkey.KindDomain, strings.ToLower}

func scanDomain(row pgx.Row) (*shiftkey.CustomDomain, error) {
	var c shiftkey.CustomDomain
	err := row.Scan(&c.Name, &c.CertificateARN, &c.Kind, &c.Target, &c.CertExpiry)
	c.CertExpiry = utc(c.CertExpiry)
	return &c, err
}

// CreateCustomDomain stores an association.
func (d *DB) CreateCustomDomain(ctx context.Context, c *shiftkey.CustomDomain) error {
	name := strings.ToLower(c.Name)
	return d.writeOne(ctx, nil, shiftkey.DomainAssociated(c.Name), change(shiftkey.KindDomain, name),
		`INSERT INTO custom_domains (`+domainColumns+`) VALUES ($1,$2,$3,$4,$5)`, name, c.CertificateARN, c.Kind, c.Target, c.CertExpiry)
}

// CustomDomain returns the association of a name (any case).
func (d *DB) CustomDomain(ctx context.Context, name string) (*shiftkey.CustomDomain, error) {
	return customDomains.get(ctx, d.pool, name)
}

// CustomDomains lists associations by name.
func (d *DB) CustomDomains(ctx context.Context) ([]*shiftkey.CustomDomain, error) {
	return customDomains.list(ctx, d.pool)
}

// UpdateCustomDomain replaces an association's certificate and target.
func (d *DB) UpdateCustomDomain(ctx context.Context, c *shiftkey.CustomDomain) error {
	return d.writeOne(ctx, shiftkey.DomainNotAssociated(c.Name), nil, change(shiftkey.KindDomain, strings.ToLower(c.Name)),
		`UPDATE custom_domains SET cert_arn = $1, kind = $2, target = $3, cert_expiry = $4 WHERE name = $5`,
		c.CertificateARN, c.Kind, c.Target, c.CertExpiry, c.Name)
}

// DeleteCustomDomain removes an association.
func (d *DB) DeleteCustomDomain(ctx context.Context, name string) error {
	return customDomains.delete(ctx, d, name)
}

// Declared identities.

// declaringLock is the advisory lock key under which one process at a
// time applies its config's declared state ("declared" in ASCII).
const declaringLock int64 = 0x6465636c61726564

// Declaring runs fn holding a session advisory lock, so that replicas started or reloaded together apply their configs
// one after the other: the next finds what the first created, and adopts
// it. fn's store calls (those made with the context it gets) run in one
// transaction on the lock's connection, committed when fn returns nil and
// rolled back otherwise: a config applied halfway (a store error midway)
// leaves nothing of itself, and the other replicas and this one's API go
// on with the old until it commits (storePool.joined).
func (d *DB) Declaring(ctx context.Context, fn func(context.Context) error) error {
	return d.withSessionLock(ctx, declaringLock, "declared state", func(conn *pgx.Conn) error {
		t, err := conn.Begin(ctx)
		if err != nil {
			return classify(err)
		}
		defer t.Rollback(context.WithoutCancel(ctx))
		if err := fn(context.WithValue(ctx, declaringTx{}, t)); err != nil {
			return err
		}
		var xid int64
		if err := t.QueryRow(ctx, `SELECT txid_current()`).Scan(&xid); err != nil {
			return classify(err)
		}
		err = t.Commit(ctx)
		var pe *pgconn.PgError
		if err != nil && !errors.As(err, &pe) {
			// The COMMIT may have been sent and its answer lost: ask the
			// server, so that the caller never reports applied changes as
			// none, nor the reverse.
			return d.settleCommit(ctx, xid, err)
		}
		return classify(err)
	})
}

// settleCommit learns from the server what became of transaction xid, whose
// COMMIT failed with err on a lost connection: nil when it committed, err
// when it aborted, and err marked shiftkey.ErrCommitUnknown when the server
// cannot say within a few seconds (unreachable, or the transaction still
// finishing). It asks on a connection of its own, not the pool's: the
// dead connection is still the pool's until Declaring returns, and on a
// pool of one (pool_max_conns=1), or one that is full, the answer would
// wait for it.
func (d *DB) settleCommit(ctx context.Context, xid int64, err error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for {
		switch status, qerr := d.txStatus(ctx, xid); {
		case qerr == nil && status == "committed":
			return nil
		case qerr == nil && status == "aborted":
			return classify(err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", shiftkey.ErrCommitUnknown, classify(err))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// txStatus is txid_status(xid) ("" when the server no longer knows it),
// asked on a connection of its own, closed after.
func (d *DB) txStatus(ctx context.Context, xid int64) (string, error) {
	conn, err := pgx.ConnectConfig(ctx, d.pool.Config().ConnConfig)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var status *string
	if err := conn.QueryRow(ctx, `SELECT txid_status($1)`, xid).Scan(&status); err != nil || status == nil {
		return "", err
	}
	return *status, nil
}

// MarkDeclared records ref as declared by the config; the name follows the
// latest mark.
func (d *DB) MarkDeclared(ctx context.Context, ref shiftkey.DeclaredRef) error {
	return d.writeOne(ctx, nil, nil, nil, `INSERT INTO declared_entities (kind, id, name) VALUES ($1,$2,$3)
		ON CONFLICT (kind, id) DO UPDATE SET name = excluded.name`, ref.Kind, ref.ID, ref.Name)
}

// UnmarkDeclared forgets a declared identity; absent marks are ignored.
func (d *DB) UnmarkDeclared(ctx context.Context, kind shiftkey.EntityKind, id string) error {
	return d.writeOne(ctx, nil, nil, nil, `DELETE FROM declared_entities WHERE kind = $1 AND id = $2`, kind, id)
}

// DeclaredRefs lists the identities of kind marked as declared.
func (d *DB) DeclaredRefs(ctx context.Context, kind shiftkey.EntityKind) ([]shiftkey.DeclaredRef, error) {
	return queryAll(ctx, d.pool, func(r pgx.Row) (ref shiftkey.DeclaredRef, err error) {
		return ref, r.Scan(&ref.Kind, &ref.ID, &ref.Name)
	}, `SELECT kind, id, name FROM declared_entities WHERE kind = $1 ORDER BY name COLLATE "C", id`, kind)
}
