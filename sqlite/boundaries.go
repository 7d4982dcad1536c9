package sqlite

import (
	"context"

	"github.com/shiftkey/shiftkey"
)

// Permissions boundaries (shiftkey.BoundaryStore). The entity's row holds
// the policy's ARN; the writes that set one and DeleteManagedPolicy each
// check the other side in their own immediate (write-locked) transaction,
// so that SQLite's single writer orders them: no boundary is set on a
// policy being deleted, no policy in use as one is deleted.

// SetPermissionsBoundary sets or (arn "") removes the boundary of the
// user or role kind/name.
func (d *DB) SetPermissionsBoundary(ctx context.Context, kind shiftkey.EntityKind, name, arn string) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE entities SET permissions_boundary = ? WHERE kind = ? AND name = ?`, nullIfEmpty(arn), kind, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return shiftkey.NoSuchEntity(kind, name)
	}
	if err := boundaryExists(ctx, tx, arn); err != nil {
		return err
	}
	return tx.Commit()
}

// BoundaryEntities lists the users and roles whose boundary is arn.
func (d *DB) BoundaryEntities(ctx context.Context, arn string) ([]*shiftkey.Entity, error) {
	return queryAll(ctx, d.db, scanEntity, `SELECT `+entityColumns+` FROM entities WHERE permissions_boundary = ? ORDER BY kind, name`, arn)
}

// boundaryExists is nil when arn is "" or a managed policy, else
// NoSuchEntity (IAM's answer for a boundary that does not exist).
func boundaryExists(ctx context.Context, tx sqlConn, arn string) error {
	if arn == "" {
		return nil
	}
	var ok bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM managed_policies WHERE arn = ?)`, arn).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return shiftkey.NoSuchPolicy(arn, true)
	}
	return nil
}

// notABoundary is nil unless a user or role has the policy arn as its
// boundary: then DeleteConflict, as for a policy attached.
func notABoundary(ctx context.Context, tx sqlConn, arn string) error {
	var used bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM entities WHERE permissions_boundary = ?)`, arn).Scan(&used); err != nil {
		return err
	}
	if used {
		return shiftkey.PolicyAttached()
	}
	return nil
}
