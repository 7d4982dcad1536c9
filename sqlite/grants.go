package sqlite

import (
	"context"

	"github.com/shiftkey/shiftkey"
)

// RecordGrant notes a session grant (idempotent).
func (d *DB) RecordGrant(ctx context.Context, g shiftkey.SessionGrant) error {
	_, err := d.db.ExecContext(ctx, `INSERT OR IGNORE INTO session_grants (scope, role, grp) VALUES (?,?,?)`, g.Scope, g.Role, g.Group)
	return err
}

// ForgetGrant removes a session grant's record.
func (d *DB) ForgetGrant(ctx context.Context, g shiftkey.SessionGrant) error {
	_, err := d.db.ExecContext(ctx, `DELETE FROM session_grants WHERE scope = ? AND role = ? AND grp = ?`, g.Scope, g.Role, g.Group)
	return err
}

// Grants lists the recorded session grants of a scope.
func (d *DB) Grants(ctx context.Context, scope string) ([]shiftkey.SessionGrant, error) {
	return queryAll(ctx, d.db, func(r scanner) (g shiftkey.SessionGrant, err error) {
		return g, r.Scan(&g.Scope, &g.Role, &g.Group)
	}, `SELECT scope, role, grp FROM session_grants WHERE scope = ? ORDER BY role, grp`, scope)
}

// GrantHeldElsewhere is always false: one process serves a SQLite store,
// and a record it did not make is a crashed predecessor's.
func (d *DB) GrantHeldElsewhere(ctx context.Context, g shiftkey.SessionGrant) (bool, error) {
	return false, nil
}

// GrantLapsedElsewhere is always false, as GrantHeldElsewhere.
func (d *DB) GrantLapsedElsewhere(ctx context.Context, g shiftkey.SessionGrant) (bool, error) {
	return false, nil
}
