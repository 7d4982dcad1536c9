package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
)

// Permissions boundaries (shiftkey.BoundaryStore). The entity's row holds
// the policy's ARN. A write that sets one locks the policy's row FOR
// SHARE; DeleteManagedPolicy locks it FOR UPDATE (policyWrite) and only
// then, in a statement of its own (READ COMMITTED: it sees what it waited
// for), looks for entities bounded by it. On any replica, then, a policy
// is not deleted under a boundary being set, and a boundary is not set on
// a policy deleted meanwhile.

// SetPermissionsBoundary sets or (arn "") removes the boundary of the
// user or role kind/name.
func (d *DB) SetPermissionsBoundary(ctx context.Context, kind shiftkey.EntityKind, name, arn string) error {
	return d.inTx(ctx, func(tx pgx.Tx, notify func(...shiftkey.Change)) error {
		tag, err := tx.Exec(ctx, `UPDATE entities SET permissions_boundary = $1 WHERE kind = $2 AND name = $3`, nullIfEmpty(arn), kind, name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return shiftkey.NoSuchEntity(kind, name)
		}
		if err := lockBoundary(ctx, tx, arn); err != nil {
			return err
		}
		notify(change(kind, name)...)
		return nil
	})
}

// BoundaryEntities lists the users and roles whose boundary is arn.
func (d *DB) BoundaryEntities(ctx context.Context, arn string) ([]*shiftkey.Entity, error) {
	return queryAll(ctx, d.pool, scanEntity, `SELECT `+entityColumns+` FROM entities WHERE permissions_boundary = $1 ORDER BY kind, name`, arn)
}

// createBounded is CreateEntity for an entity with a boundary: insertWithin's
// transaction, with the boundary's policy locked (lockBoundary) first.
func (d *DB) createBounded(ctx context.Context, e *shiftkey.Entity, inserts []stmt) error {
	return d.inTx(ctx, func(tx pgx.Tx, notify func(...shiftkey.Change)) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(quotaLock)); err != nil {
			return err
		}
		if err := lockBoundary(ctx, tx, e.PermissionsBoundary); err != nil {
			return err
		}
		for i, insert := range inserts {
			if _, err := tx.Exec(ctx, insert.sql, insert.args...); i == 0 && isCode(err, uniqueViolation) {
				return shiftkey.EntityExists(e.Kind, e.Name)
			} else if err != nil {
				return err
			}
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM entities WHERE kind = $1`, e.Kind).Scan(&n); err != nil {
			return err
		}
		if n > shiftkey.MaxEntities[e.Kind] {
			return shiftkey.AccountQuota(e.Kind)
		}
		notify(change(e.Kind, e.Name)...)
		return nil
	})
}

// lockBoundary locks the managed policy arn FOR SHARE until tx ends;
// NoSuchEntity when there is none. A no-op for arn "".
func lockBoundary(ctx context.Context, tx pgx.Tx, arn string) error {
	if arn == "" {
		return nil
	}
	tag, err := tx.Exec(ctx, `SELECT 1 FROM managed_policies WHERE arn = $1 FOR SHARE`, arn)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return shiftkey.NoSuchPolicy(arn, true)
	}
	return nil
}

// notABoundary is nil unless a user or role has the policy arn as its
// boundary: then DeleteConflict, as for a policy attached. The caller
// holds the policy's row FOR UPDATE.
func notABoundary(ctx context.Context, tx pgx.Tx, arn string) error {
	var used bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM entities WHERE permissions_boundary = $1)`, arn).Scan(&used); err != nil {
		return err
	}
	if used {
		return shiftkey.PolicyAttached()
	}
	return nil
}
