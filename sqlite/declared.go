package sqlite

import (
	"context"

	"github.com/shiftkey/shiftkey"
)

var _ shiftkey.DeclaredStore = (*DB)(nil)

// MarkDeclared records ref as declared by the config; the name follows the
// latest mark.
func (d *DB) MarkDeclared(ctx context.Context, ref shiftkey.DeclaredRef) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO declared_entities (kind, id, name) VALUES (?,?,?)
		ON CONFLICT (kind, id) DO UPDATE SET name = excluded.name`, ref.Kind, ref.ID, ref.Name)
	return err
}

// UnmarkDeclared forgets a declared identity; absent marks are ignored.
func (d *DB) UnmarkDeclared(ctx context.Context, kind shiftkey.EntityKind, id string) error {
	_, err := d.db.ExecContext(ctx, `DELETE FROM declared_entities WHERE kind = ? AND id = ?`, kind, id)
	return err
}

// DeclaredRefs lists the identities of kind marked as declared.
func (d *DB) DeclaredRefs(ctx context.Context, kind shiftkey.EntityKind) ([]shiftkey.DeclaredRef, error) {
	return queryAll(ctx, d.db, func(r scanner) (ref shiftkey.DeclaredRef, err error) {
		return ref, r.Scan(&ref.Kind, &ref.ID, &ref.Name)
	}, `SELECT kind, id, name FROM declared_entities WHERE kind = ? ORDER BY name, id`, kind)
}

// Declaring runs fn: this process is the SQLite file's only writer, and
// applies its config once at a time (start, then each reload). fn's store
// calls (those made with the context it gets) run in one transaction,
// committed when fn returns nil and rolled back otherwise: a config applied
// halfway (a store error midway) leaves nothing of itself. Other writes
// wait for it (the write lock, up to busy_timeout).
func (d *DB) Declaring(ctx context.Context, fn func(context.Context) error) error {
	d.declaring.Lock()
	defer d.declaring.Unlock()
	return d.db.declaring(ctx, fn)
}
