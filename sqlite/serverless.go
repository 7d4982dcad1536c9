package sqlite

import (
	"context"
	"strings"

	"github.com/shiftkey/shiftkey"
)

// CreateNamespace stores a namespace.
func (d *DB) CreateNamespace(ctx context.Context, n *shiftkey.Namespace) error {
	return d.insert(ctx, shiftkey.NamespaceExists(n.Name),
		`INSERT INTO namespaces (`+namespaceColumns+`) VALUES (?,?,?,?,?,?,?)`,
		n.Name, n.ID, n.DBName, n.AdminUsername, n.Status, millis(n.CreatedAt), regionOrDefault(n.Region))
}

const namespaceColumns = `name, id, db_name, admin_username, status, created_at, region`

var namespaces = byName[*shiftkey.Namespace]{"namespaces", namespaceColumns, scanNamespace, shiftkey.NamespaceNotFound}

func scanNamespace(row scanner) (*shiftkey.Namespace, error) {
	var n shiftkey.Namespace
	var created int64
	if err := row.Scan(&n.Name, &n.ID, &n.DBName, &n.AdminUsername, &n.Status, &created, &n.Region); err != nil {
		return nil, err
	}
	n.CreatedAt = fromMillis(created)
	return &n, nil
}

// Namespace returns a namespace by name.
func (d *DB) Namespace(ctx context.Context, name string) (*shiftkey.Namespace, error) {
	return namespaces.get(ctx, d.db, name)
}

// Namespaces lists namespaces by name.
func (d *DB) Namespaces(ctx context.Context) ([]*shiftkey.Namespace, error) {
	return namespaces.list(ctx, d.db)
}

// DeleteNamespace removes a namespace.
func (d *DB) DeleteNamespace(ctx context.Context, name string) error {
	return namespaces.delete(ctx, d, name)
}

const workgroupColumns = `name, id, namespace, status, base_capacity, endpoint_address, endpoint_port,
	backend_host, backend_port, backend_admin_user, backend_managed, created_at, backend_login, region`

var workgroups = byName[*shiftkey.Workgroup]{"workgroups", workgroupColumns, scanWorkgroup, shiftkey.WorkgroupNotFound}

func scanWorkgroup(row scanner) (*shiftkey.Workgroup, error) {
	var w shiftkey.Workgroup
	var created int64
	if err := row.Scan(&w.Name, &w.ID, &w.Namespace, &w.Status, &w.BaseCapacity, &w.Endpoint.Address, &w.Endpoint.Port,
		&w.Backend.Host, &w.Backend.Port, &w.Backend.AdminUser, &w.Backend.Managed, &created, &w.Backend.Login, &w.Region); err != nil {
		return nil, err
	}
	w.CreatedAt = fromMillis(created)
	return &w, nil
}

// CreateWorkgroup stores a workgroup.
func (d *DB) CreateWorkgroup(ctx context.Context, w *shiftkey.Workgroup) error {
	return d.insert(ctx, shiftkey.WorkgroupExists(w.Name, w.Namespace),
		`INSERT INTO workgroups (`+workgroupColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		w.Name, w.ID, w.Namespace, w.Status, w.BaseCapacity, w.Endpoint.Address, w.Endpoint.Port,
		w.Backend.Host, w.Backend.Port, w.Backend.AdminUser, w.Backend.Managed, millis(w.CreatedAt), w.Backend.Login, regionOrDefault(w.Region))
}

// UpdateWorkgroup replaces a workgroup's mutable fields.
func (d *DB) UpdateWorkgroup(ctx context.Context, w *shiftkey.Workgroup) error {
	return d.execOne(ctx, shiftkey.WorkgroupNotFound(w.Name), `UPDATE workgroups SET status = ?, base_capacity = ?, endpoint_address = ?, endpoint_port = ?,
		backend_host = ?, backend_port = ?, backend_admin_user = ?, backend_managed = ?, backend_login = ?, region = ? WHERE name = ?`,
		w.Status, w.BaseCapacity, w.Endpoint.Address, w.Endpoint.Port, w.Backend.Host, w.Backend.Port, w.Backend.AdminUser, w.Backend.Managed, w.Backend.Login,
		regionOrDefault(w.Region), w.Name)
}

// Workgroup returns a workgroup by name.
func (d *DB) Workgroup(ctx context.Context, name string) (*shiftkey.Workgroup, error) {
	return workgroups.get(ctx, d.db, name)
}

// Workgroups lists workgroups by name.
func (d *DB) Workgroups(ctx context.Context) ([]*shiftkey.Workgroup, error) {
	return workgroups.list(ctx, d.db)
}

// DeleteWorkgroup removes a workgroup, its credentials, salts and custom
// domains.
func (d *DB) DeleteWorkgroup(ctx context.Context, name string) error {
	// Deferred first so they run last, after the commit or rollback; any
	// workgroup's, for the id is read in the transaction.
	inWorkgroup := func(k loginKey) bool { return strings.HasPrefix(k.Cluster, shiftkey.WorkgroupScopePrefix) }
	defer d.cache.InvalidateIf(inWorkgroup)
	defer d.salts.DropIf(inWorkgroup)
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	// Its logins are keyed by its scope (Workgroup.CredentialScope): gone
	// with it, as a cluster's, rather than kept for good.
	for _, q := range []string{`DELETE FROM credentials WHERE cluster = ? || (SELECT id FROM workgroups WHERE name = ?)`,
		`DELETE FROM login_salts WHERE cluster = ? || (SELECT id FROM workgroups WHERE name = ?)`} {
		if _, err := tx.ExecContext(ctx, q, shiftkey.WorkgroupScopePrefix, name); err != nil {
			return err
		}
	}
	res, err := tx.ExecContext(ctx, `DELETE FROM workgroups WHERE name = ?`, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return shiftkey.WorkgroupNotFound(name)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM custom_domains WHERE kind = 'workgroup' AND target = ?`, name); err != nil {
		return err
	}
	return tx.Commit()
}
