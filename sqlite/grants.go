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

// GrantHeldElsewhere reports whether one of g.Siblings (another gateway of
// this process on the same backend server) records g's role and group.
// One process serves a SQLite store: no other holds anything, and a record
// of g's own scope it did not make is a crashed predecessor's.
func (d *DB) GrantHeldElsewhere(ctx context.Context, g shiftkey.SessionGrant) (bool, error) {
	if len(g.Siblings) == 0 {
		return false, nil
	}
	var held bool
	err := d.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM session_grants WHERE role = ? AND grp = ? AND scope IN (`+marks(len(g.Siblings))+`))`, append([]any{g.Role, g.Group}, anys(g.Siblings)...)...).Scan(&held)
	return held, err
}

// GrantLapsedElsewhere is always false: a SQLite store's records have no
// lease.
func (d *DB) GrantLapsedElsewhere(ctx context.Context, g shiftkey.SessionGrant) (bool, error) {
	return false, nil
}
