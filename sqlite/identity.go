package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/secretbox"
)

const entityColumns = `kind, name, id, path, arn, created_at, assume_role_policy, description, max_session_duration, trust_principal_ids, permissions_boundary`

func scanEntity(row scanner) (*shiftkey.Entity, error) {
	var e shiftkey.Entity
	var created int64
	var boundary sql.NullString
	err := row.Scan(&e.Kind, &e.Name, &e.ID, &e.Path, &e.ARN, &created, &e.AssumeRolePolicy, &e.Description, &e.MaxSessionDuration, &e.TrustPrincipalIDs, &boundary)
	if err != nil {
		return nil, err
	}
	e.CreatedAt = fromMillis(created)
	e.PermissionsBoundary = boundary.String
	return &e, nil
}

// CreateEntity stores a new user, group or role with its tags (e.Tags, at
// most shiftkey.MaxTags, keys distinct regardless of case), within the
// account's quota of its kind (shiftkey.MaxEntities): one transaction.
func (d *DB) CreateEntity(ctx context.Context, e *shiftkey.Entity) error {
	if len(e.Tags) > shiftkey.MaxTags {
		return shiftkey.TagQuota(e.Kind)
	}
	tags := func(tx sqlConn) error {
		if err := boundaryExists(ctx, tx, e.PermissionsBoundary); err != nil {
			return err
		}
		return putTags(ctx, tx, e.Kind, e.Name, e.Tags)
	}
	return d.insertWithin(ctx, shiftkey.EntityExists(e.Kind, e.Name), shiftkey.AccountQuota(e.Kind), shiftkey.MaxEntities[e.Kind],
		`SELECT count(*) FROM entities WHERE kind = ?`, []any{e.Kind}, tags,
		`INSERT INTO entities (`+entityColumns+`) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
		e.Kind, e.Name, e.ID, e.Path, e.ARN, millis(e.CreatedAt), e.AssumeRolePolicy, e.Description, e.MaxSessionDuration, e.TrustPrincipalIDs,
		nullIfEmpty(e.PermissionsBoundary))
}

// insertWithin runs insert, then (when not nil) more, and then count in
// one immediate (write-locked) transaction, committed only when count is
// at most max: concurrent inserts count each other. A unique violation is
// conflict, one past max is over.
func (d *DB) insertWithin(ctx context.Context, conflict, over error, max int, count string, countArgs []any, more func(sqlConn) error, insert string, args ...any) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, insert, args...); isUniqueViolation(err) {
		return conflict
	} else if err != nil {
		return err
	}
	if more != nil {
		if err := more(tx); err != nil {
			return err
		}
	}
	var n int
	if err := tx.QueryRowContext(ctx, count, countArgs...).Scan(&n); err != nil {
		return err
	}
	if n > max {
		return over
	}
	return tx.Commit()
}

// Entity returns the entity of kind called name (any case).
func (d *DB) Entity(ctx context.Context, kind shiftkey.EntityKind, name string) (*shiftkey.Entity, error) {
	return queryOne(ctx, d.db, scanEntity, shiftkey.NoSuchEntity(kind, name), `SELECT `+entityColumns+` FROM entities WHERE kind = ? AND name = ?`, kind, name)
}

// EntityByID returns the entity of kind whose unique id is id.
func (d *DB) EntityByID(ctx context.Context, kind shiftkey.EntityKind, id string) (*shiftkey.Entity, error) {
	return queryOne(ctx, d.db, scanEntity, shiftkey.NoSuchEntityID(kind, id), `SELECT `+entityColumns+` FROM entities WHERE kind = ? AND id = ?`, kind, id)
}

// Entities lists the entities of kind whose path starts with pathPrefix.
func (d *DB) Entities(ctx context.Context, kind shiftkey.EntityKind, pathPrefix string) ([]*shiftkey.Entity, error) {
	return queryAll(ctx, d.db, scanEntity, `SELECT `+entityColumns+` FROM entities WHERE kind = ? AND substr(path, 1, ?) = ? ORDER BY name`,
		kind, len(pathPrefix), pathPrefix)
}

// UpdateRole sets the role's settings that fields names.
func (d *DB) UpdateRole(ctx context.Context, r *shiftkey.Entity, fields shiftkey.RoleFields) error {
	set, args := "name = name", []any{} // none named: only whether the role exists
	add := func(col string, v any) {
		if len(args) == 0 {
			set = col + " = ?"
		} else {
			set += ", " + col + " = ?"
		}
		args = append(args, v)
	}
	if fields&shiftkey.RoleTrust != 0 {
		add("assume_role_policy", r.AssumeRolePolicy)
		add("trust_principal_ids", r.TrustPrincipalIDs)
	}
	if fields&shiftkey.RoleDescription != 0 {
		add("description", r.Description)
	}
	if fields&shiftkey.RoleMaxSession != 0 {
		add("max_session_duration", r.MaxSessionDuration)
	}
	return d.execOne(ctx, shiftkey.NoSuchEntity(shiftkey.KindRole, r.Name),
		`UPDATE entities SET `+set+` WHERE kind = ? AND name = ?`, append(args, shiftkey.KindRole, r.Name)...)
}

// renameColumns are the columns that hold an entity's name, by kind of
// entity: what RenameEntity moves to the new name, as DeleteEntity
// deletes the rows they key.
var renameColumns = map[shiftkey.EntityKind][]string{
	shiftkey.KindUser: {
		`UPDATE inline_policies SET owner = ? WHERE kind = 'user' AND owner = ?`,
		`UPDATE attachments SET owner = ? WHERE kind = 'user' AND owner = ?`,
		`UPDATE tags SET owner = ? WHERE kind = 'user' AND owner = ?`,
		`UPDATE access_keys SET user_name = ? WHERE user_name = ?`,
		`UPDATE group_members SET user_name = ? WHERE user_name = ?`,
	},
	shiftkey.KindGroup: {
		`UPDATE inline_policies SET owner = ? WHERE kind = 'group' AND owner = ?`,
		`UPDATE attachments SET owner = ? WHERE kind = 'group' AND owner = ?`,
		`UPDATE tags SET owner = ? WHERE kind = 'group' AND owner = ?`,
		`UPDATE group_members SET group_name = ? WHERE group_name = ?`,
	},
}

// RenameEntity renames a user or group with what hangs off its name, in
// one (immediate, write-locked) transaction: the entity read is the one
// renamed.
func (d *DB) RenameEntity(ctx context.Context, kind shiftkey.EntityKind, from, to *shiftkey.Entity) error {
	stmts, ok := renameColumns[kind]
	if !ok {
		return fmt.Errorf("RenameEntity: a %s cannot be renamed", kind)
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var old, id, arn string
	err = tx.QueryRowContext(ctx, `SELECT name, id, arn FROM entities WHERE kind = ? AND name = ?`, kind, from.Name).Scan(&old, &id, &arn)
	if errors.Is(err, sql.ErrNoRows) {
		return shiftkey.NoSuchEntity(kind, from.Name)
	} else if err != nil {
		return err
	}
	if from.ID != "" && id != from.ID || from.ARN != "" && arn != from.ARN {
		return shiftkey.EntityChanged(kind, from.Name)
	}
	// The name in another case is the same key (NOCASE): no conflict.
	if _, err := tx.ExecContext(ctx, `UPDATE entities SET name = ?, path = ?, arn = ? WHERE kind = ? AND name = ?`,
		to.Name, to.Path, to.ARN, kind, old); isUniqueViolation(err) {
		return shiftkey.EntityExists(kind, to.Name)
	} else if err != nil {
		return err
	}
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q, to.Name, old); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// DeleteEntity removes an entity and what hangs off it.
func (d *DB) DeleteEntity(ctx context.Context, kind shiftkey.EntityKind, name string) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM entities WHERE kind = ? AND name = ?`, kind, name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return shiftkey.NoSuchEntity(kind, name)
	}
	stmts := []string{
		`DELETE FROM inline_policies WHERE kind = ? AND owner = ?`,
		`DELETE FROM attachments WHERE kind = ? AND owner = ?`,
		`DELETE FROM tags WHERE kind = ? AND owner = ?`,
	}
	for _, q := range stmts {
		if _, err := tx.ExecContext(ctx, q, kind, name); err != nil {
			return err
		}
	}
	switch kind {
	case shiftkey.KindUser:
		if _, err := tx.ExecContext(ctx, `DELETE FROM access_keys WHERE user_name = ?`, name); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM group_members WHERE user_name = ?`, name); err != nil {
			return err
		}
	case shiftkey.KindGroup:
		if _, err := tx.ExecContext(ctx, `DELETE FROM group_members WHERE group_name = ?`, name); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Access keys.

// CreateAccessKey stores a new access key for an existing user that has
// fewer than shiftkey.MaxAccessKeysPerUser. The check and the insert are
// one immediate (write-locked) transaction, so concurrent calls cannot both
// pass the check.
func (d *DB) CreateAccessKey(ctx context.Context, k *shiftkey.AccessKey) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var userID string
	err = shiftkey.AdmitAccessKey(func() (user string, err error) {
		err = tx.QueryRowContext(ctx, `SELECT name, id FROM entities WHERE kind = ? AND name = ?`, shiftkey.KindUser, k.UserName).Scan(&user, &userID)
		if errors.Is(err, sql.ErrNoRows) {
			err = shiftkey.NoSuchEntity(shiftkey.KindUser, k.UserName)
		}
		return user, err
	}, func(user string) (n int, err error) {
		return n, tx.QueryRowContext(ctx, `SELECT count(*) FROM access_keys WHERE user_name = ?`, user).Scan(&n)
	})
	if err != nil {
		return err
	}
	secret, sealed, err := d.seal(ctx, tx, k.Secret, accessKeyAAD(k.ID))
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO access_keys (id, secret, sealed, user_name, user_id, status, created_at) VALUES (?,?,?,?,?,?,?)`,
		k.ID, secret, sealed, k.UserName, userID, k.Status, millis(k.CreatedAt)); err != nil {
		return err
	}
	return tx.Commit()
}

func keyNotFound(id string) error {
	return shiftkey.NoSuchAccessKey(id)
}

// AccessKey returns the access key with the given id, with its user as
// the one statement finds it by id.
func (d *DB) AccessKey(ctx context.Context, id string) (*shiftkey.AccessKey, error) {
	scan := func(r scanner) (*shiftkey.AccessKey, error) { return d.scanAccessKey(ctx, r) }
	var k *shiftkey.AccessKey
	err := secretbox.RereadAfterRotation(func() (err error) {
		k, err = queryOne(ctx, d.db, scan, keyNotFound(id), `SELECT `+accessKeyColumns+` FROM `+accessKeysWithUsers+` WHERE k.id = ?`, id)
		return err
	})
	return k, err
}

// accessKeysWithUsers joins each key (k) to its user (u) by the user's id:
// the key's user_id or, for a key an older version wrote (NULL), the id of
// the user its user_name names.
const accessKeysWithUsers = `access_keys k JOIN entities u ON u.kind = 'user' AND u.id = coalesce(k.user_id,
	(SELECT n.id FROM entities n WHERE n.kind = 'user' AND n.name = k.user_name))`

// usersWithAccessKeys is accessKeysWithUsers from the users' side, for a
// user's keys (the same rows; by the keys' indexes).
const usersWithAccessKeys = `entities u JOIN access_keys k ON k.user_id = u.id OR k.user_id IS NULL AND k.user_name = u.name`

const accessKeyColumns = `k.id, k.secret, k.sealed, u.name, u.id, k.status, k.created_at, k.last_used_at, coalesce(k.last_used_service, ''), coalesce(k.last_used_region, '')`

func (d *DB) scanAccessKey(ctx context.Context, row scanner) (*shiftkey.AccessKey, error) {
	var k shiftkey.AccessKey
	var created int64
	var used sql.NullInt64
	var stored string
	var sealed bool
	if err := row.Scan(&k.ID, &stored, &sealed, &k.UserName, &k.UserID, &k.Status, &created, &used, &k.LastUsedService, &k.LastUsedRegion); err != nil {
		return nil, err
	}
	if used.Valid {
		k.LastUsed = fromMillis(used.Int64)
	}
	var err error
	if k.Secret, err = d.unseal(ctx, stored, sealed, accessKeyAAD(k.ID)); err != nil {
		return nil, fmt.Errorf("access key %s: %w", k.ID, err)
	}
	k.CreatedAt = fromMillis(created)
	return &k, nil
}

// AccessKeys returns the access keys of a user, oldest first.
func (d *DB) AccessKeys(ctx context.Context, userName string) ([]*shiftkey.AccessKey, error) {
	var keys []*shiftkey.AccessKey
	err := secretbox.RereadAfterRotation(func() (err error) {
		keys, err = queryAll(ctx, d.db, func(row scanner) (*shiftkey.AccessKey, error) { return d.scanAccessKey(ctx, row) },
			`SELECT `+accessKeyColumns+` FROM `+usersWithAccessKeys+` WHERE u.kind = 'user' AND u.name = ? ORDER BY k.created_at, k.id`, userName)
		return err
	})
	return keys, err
}

// UpdateAccessKey sets a key's status.
func (d *DB) UpdateAccessKey(ctx context.Context, id, status string) error {
	return d.execOne(ctx, keyNotFound(id),
		`UPDATE access_keys SET status = ? WHERE id = ?`, status, id)
}

// RecordAccessKeyUse records a key's use, at most once a
// shiftkey.KeyUseInterval.
func (d *DB) RecordAccessKeyUse(ctx context.Context, id string, at time.Time, service, region string) error {
	_, err := d.db.ExecContext(ctx, `UPDATE access_keys SET last_used_at = ?, last_used_service = ?, last_used_region = ?
		WHERE id = ? AND (last_used_at IS NULL OR last_used_at <= ?)`, millis(at), service, region, id, millis(at.Add(-shiftkey.KeyUseInterval)))
	return err
}

// DeleteAccessKey removes a key.
func (d *DB) DeleteAccessKey(ctx context.Context, id string) error {
	return d.execOne(ctx, keyNotFound(id),
		`DELETE FROM access_keys WHERE id = ?`, id)
}

// Inline policies.

// PutInlinePolicy creates or replaces an inline policy.
func (d *DB) PutInlinePolicy(ctx context.Context, kind shiftkey.EntityKind, owner string, p shiftkey.PolicyDocument) error {
	cond, args := ownerExists(kind, owner)
	return d.execOne(ctx, shiftkey.NoSuchEntity(kind, owner), `INSERT INTO inline_policies (kind, owner, name, document)
		SELECT ?,?,?,? WHERE `+cond+`
		ON CONFLICT (kind, owner, name) DO UPDATE SET document = excluded.document`, append([]any{kind, owner, p.Name, p.Document}, args...)...)
}

// PutInlinePolicyAdmitted creates or replaces an inline policy once admit
// accepts the owner's policies: read, checked and written in one immediate
// (write-locked) transaction, so concurrent puts see each other's.
func (d *DB) PutInlinePolicyAdmitted(ctx context.Context, kind shiftkey.EntityKind, owner string, p shiftkey.PolicyDocument, admit func([]shiftkey.PolicyDocument) error) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var exists bool
	cond, args := ownerExists(kind, owner)
	if err := tx.QueryRowContext(ctx, `SELECT `+cond, args...).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		return shiftkey.NoSuchEntity(kind, owner)
	}
	have, err := queryAll(ctx, tx, scanInline, `SELECT name, document FROM inline_policies WHERE kind = ? AND owner = ? ORDER BY name`, kind, owner)
	if err != nil {
		return err
	}
	if err := admit(have); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO inline_policies (kind, owner, name, document) VALUES (?,?,?,?)
		ON CONFLICT (kind, owner, name) DO UPDATE SET document = excluded.document`, kind, owner, p.Name, p.Document); err != nil {
		return err
	}
	return tx.Commit()
}

func scanInline(r scanner) (p shiftkey.PolicyDocument, err error) {
	return p, r.Scan(&p.Name, &p.Document)
}

// ownerExists is the condition, and its arguments, under which a row
// hanging off an entity (or a cluster's tags) is written. Owners are
// names: written for one deleted meanwhile (the caller checked it first),
// the row would pass to one created later under the name. One statement,
// so SQLite's single writer orders it with the delete.
func ownerExists(kind shiftkey.EntityKind, name string) (string, []any) {
	switch kind {
	case shiftkey.KindCluster:
		return `EXISTS (SELECT 1 FROM clusters WHERE identifier = ?)`, []any{name}
	case shiftkey.KindPolicy:
		return `EXISTS (SELECT 1 FROM managed_policies WHERE arn = ?)`, []any{name}
	}
	return `EXISTS (SELECT 1 FROM entities WHERE kind = ? AND name = ?)`, []any{kind, name}
}

// tagOwner is the SQL, taking the owner's name as its one argument, of
// the tags' owner column. A managed policy's tags are kept under its id,
// not its ARN, as its versions are: a policy deleted and created again
// under the ARN is another policy, and one deleted by a shiftkey that
// kept no policy tags leaves rows that no later policy reads.
func tagOwner(kind shiftkey.EntityKind) string {
	if kind == shiftkey.KindPolicy {
		return `(SELECT id FROM managed_policies WHERE arn = ?)`
	}
	return `?`
}

// existsOr is nil when the owner exists, else NoSuchEntity: why an
// insert that may be a no-op (twice) wrote nothing.
func (d *DB) existsOr(ctx context.Context, kind shiftkey.EntityKind, name string) error {
	var ok bool
	cond, args := ownerExists(kind, name)
	if err := d.db.QueryRowContext(ctx, `SELECT `+cond, args...).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return shiftkey.NoSuchEntity(kind, name)
	}
	return nil
}

// InlinePolicies returns the inline policies of an entity ordered by name.
func (d *DB) InlinePolicies(ctx context.Context, kind shiftkey.EntityKind, owner string) ([]shiftkey.PolicyDocument, error) {
	return queryAll(ctx, d.db, scanInline, `SELECT name, document FROM inline_policies WHERE kind = ? AND owner = ? ORDER BY name`, kind, owner)
}

// DeleteInlinePolicy removes an inline policy.
func (d *DB) DeleteInlinePolicy(ctx context.Context, kind shiftkey.EntityKind, owner, name string) error {
	return d.execOne(ctx, shiftkey.NoSuchInlinePolicy(kind, name),
		`DELETE FROM inline_policies WHERE kind = ? AND owner = ? AND name = ?`, kind, owner, name)
}

// Managed policies.

const policyColumns = `arn, name, id, path, description, document, created_at, updated_at`

// policyRead is what a read of p (managed_policies) selects: policyColumns,
// the default version's number (NULL, from before versions: 1) and the
// newest version's CreateDate.
var policyRead = prefixed("p.", policyColumns) + `, coalesce(p.default_version, 1),
	max(p.updated_at, coalesce((SELECT max(v.created_at) FROM policy_versions v WHERE v.policy_id = p.id), 0))`

func scanPolicy(row scanner, more ...any) (*shiftkey.ManagedPolicy, error) {
	var p shiftkey.ManagedPolicy
	var created, updated, newest, def int64
	if err := row.Scan(append([]any{&p.ARN, &p.Name, &p.ID, &p.Path, &p.Description, &p.Document, &created, &updated, &def, &newest}, more...)...); err != nil {
		return nil, err
	}
	p.CreatedAt, p.UpdatedAt, p.NewestVersionAt = fromMillis(created), fromMillis(updated), fromMillis(newest)
	p.DefaultVersion = shiftkey.PolicyVersionID(def)
	return &p, nil
}

// CreateManagedPolicy stores a customer-managed policy, within the
// account's quota (shiftkey.MaxManagedPolicies). Versions a policy of its
// id left (deleted by a shiftkey before versions) go.
func (d *DB) CreateManagedPolicy(ctx context.Context, p *shiftkey.ManagedPolicy) error {
	if len(p.Tags) > shiftkey.MaxTags {
		return shiftkey.TagQuota(shiftkey.KindPolicy)
	}
	return d.insertWithin(ctx, shiftkey.PolicyExists(p.Name), shiftkey.AccountQuota(shiftkey.KindPolicy), shiftkey.MaxManagedPolicies,
		`SELECT count(*) FROM managed_policies`, nil, func(tx sqlConn) error {
			if _, err := tx.ExecContext(ctx, `DELETE FROM policy_versions WHERE policy_id = ?`, p.ID); err != nil {
				return err
			}
			return putTags(ctx, tx, shiftkey.KindPolicy, p.ARN, p.Tags)
		},
		`INSERT INTO managed_policies (`+policyColumns+`) VALUES (?,?,?,?,?,?,?,?)`,
		p.ARN, p.Name, p.ID, p.Path, p.Description, p.Document, millis(p.CreatedAt), millis(p.UpdatedAt))
}

// UpdateManagedPolicy replaces a policy's description and default
// document and drops its other versions, in one transaction.
func (d *DB) UpdateManagedPolicy(ctx context.Context, p *shiftkey.ManagedPolicy) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE managed_policies SET document = ?, description = ?, updated_at = ? WHERE arn = ?`,
		p.Document, p.Description, millis(p.UpdatedAt), p.ARN)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return shiftkey.NoSuchPolicy(p.ARN, false)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM policy_versions WHERE policy_id = (SELECT id FROM managed_policies WHERE arn = ?)`, p.ARN); err != nil {
		return err
	}
	return tx.Commit()
}

// ManagedPolicy returns the policy with the given ARN.
func (d *DB) ManagedPolicy(ctx context.Context, arn string) (*shiftkey.ManagedPolicy, error) {
	return queryOne(ctx, d.db, func(row scanner) (*shiftkey.ManagedPolicy, error) { return scanPolicy(row) }, shiftkey.NoSuchPolicy(arn, true),
		`SELECT `+policyRead+` FROM managed_policies p WHERE p.arn = ?`, arn)
}

// ManagedPolicies lists the policies whose path starts with pathPrefix,
// by name, with their attachment counts.
func (d *DB) ManagedPolicies(ctx context.Context, pathPrefix string) ([]*shiftkey.ManagedPolicy, error) {
	return queryAll(ctx, d.db, func(row scanner) (*shiftkey.ManagedPolicy, error) {
		var n int
		p, err := scanPolicy(row, &n)
		if p != nil {
			p.AttachmentCount = n
		}
		return p, err
	}, `SELECT `+policyRead+`, (SELECT count(*) FROM attachments a WHERE a.policy_arn = p.arn)
		FROM managed_policies p WHERE substr(p.path, 1, ?) = ? ORDER BY p.name`, len(pathPrefix), pathPrefix)
}

// DeleteManagedPolicy removes a policy: not while it has versions
// besides the default (counted in the delete), nor while attached (one
// attached meanwhile, the caller having counted none, is DeleteConflict).
func (d *DB) DeleteManagedPolicy(ctx context.Context, arn string) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var versions int
	err = tx.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM policy_versions v WHERE v.policy_id = p.id) FROM managed_policies p WHERE p.arn = ?`, arn).Scan(&versions)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return shiftkey.NoSuchPolicy(arn, false)
	case err != nil:
		return err
	case versions > 0:
		return shiftkey.PolicyHasVersions()
	}
	if err := notABoundary(ctx, tx, arn); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM tags WHERE kind = ? AND owner = `+tagOwner(shiftkey.KindPolicy), shiftkey.KindPolicy, arn); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM managed_policies WHERE arn = ?`, arn); isForeignKeyViolation(err) {
		return shiftkey.PolicyAttached()
	} else if err != nil {
		return err
	}
	return tx.Commit()
}

// policyHead is what a version write reads of its policy, in its
// transaction: the id, the default version (number, document, date), the
// next version's number and how many other versions there are.
type policyHead struct {
	id, document      string
	def, next, others int64
	updated           int64
}

func readPolicyHead(ctx context.Context, tx sqlConn, arn string) (*policyHead, error) {
	var h policyHead
	err := tx.QueryRowContext(ctx, `SELECT p.id, p.document, coalesce(p.default_version, 1), coalesce(p.next_version, 2), p.updated_at,
		(SELECT count(*) FROM policy_versions v WHERE v.policy_id = p.id) FROM managed_policies p WHERE p.arn = ?`, arn).
		Scan(&h.id, &h.document, &h.def, &h.next, &h.updated, &h.others)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, shiftkey.NoSuchPolicy(arn, false)
	}
	return &h, err
}

// setDefault makes version n (document doc, created at) p's default: the
// default it replaces becomes one of its other versions.
func setDefault(ctx context.Context, tx sqlConn, arn string, h *policyHead, n int64, doc string, at int64) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO policy_versions (policy_id, version, document, created_at) VALUES (?,?,?,?)`,
		h.id, h.def, h.document, h.updated); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE managed_policies SET document = ?, default_version = ?, updated_at = ? WHERE arn = ?`, doc, n, at, arn)
	return err
}

// CreatePolicyVersion adds a version in one immediate (write-locked)
// transaction: concurrent calls count, and number, one after the other.
func (d *DB) CreatePolicyVersion(ctx context.Context, arn string, v *shiftkey.PolicyVersion) error {
	var n int64
	err := d.policyTx(ctx, arn, func(tx sqlConn, h *policyHead) error {
		if h.others+1 >= shiftkey.MaxPolicyVersions {
			return shiftkey.PolicyVersionQuota()
		}
		n = h.next
		if _, err := tx.ExecContext(ctx, `UPDATE managed_policies SET next_version = ? WHERE arn = ?`, n+1, arn); err != nil {
			return err
		}
		if v.IsDefault {
			return setDefault(ctx, tx, arn, h, n, v.Document, millis(v.CreatedAt))
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO policy_versions (policy_id, version, document, created_at) VALUES (?,?,?,?)`,
			h.id, n, v.Document, millis(v.CreatedAt))
		return err
	})
	if err == nil {
		v.ID = shiftkey.PolicyVersionID(n)
	}
	return err
}

// policyTx runs f with the policy arn's head in one immediate
// (write-locked) transaction, committed when f returns nil.
func (d *DB) policyTx(ctx context.Context, arn string, f func(tx sqlConn, h *policyHead) error) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	h, err := readPolicyHead(ctx, tx, arn)
	if err != nil {
		return err
	}
	if err := f(tx, h); err != nil {
		return err
	}
	return tx.Commit()
}

// PolicyVersions returns a policy's versions, newest first: one
// statement, so one snapshot of the default and the others.
func (d *DB) PolicyVersions(ctx context.Context, arn string) ([]*shiftkey.PolicyVersion, error) {
	out, err := queryAll(ctx, d.db, func(row scanner) (*shiftkey.PolicyVersion, error) {
		var v shiftkey.PolicyVersion
		var n, at int64
		err := row.Scan(&n, &v.Document, &at, &v.IsDefault)
		v.ID, v.CreatedAt = shiftkey.PolicyVersionID(n), fromMillis(at)
		return &v, err
	}, `SELECT coalesce(p.default_version, 1), p.document, p.updated_at, 1 FROM managed_policies p WHERE p.arn = ?
		UNION ALL SELECT v.version, v.document, v.created_at, 0 FROM policy_versions v JOIN managed_policies p ON v.policy_id = p.id WHERE p.arn = ?`, arn, arn)
	if err == nil && len(out) == 0 {
		err = shiftkey.NoSuchPolicy(arn, false)
	}
	return shiftkey.NewestVersionFirst(out), err
}

// SetDefaultPolicyVersion makes a version the default, in one
// transaction.
func (d *DB) SetDefaultPolicyVersion(ctx context.Context, arn, id string) error {
	return d.policyTx(ctx, arn, func(tx sqlConn, h *policyHead) error {
		n, ok := shiftkey.PolicyVersionNumber(id)
		if ok && n == h.def {
			return nil
		}
		var doc string
		var at int64
		err := tx.QueryRowContext(ctx, `DELETE FROM policy_versions WHERE policy_id = ? AND version = ? RETURNING document, created_at`, h.id, n).Scan(&doc, &at)
		switch {
		case !ok || errors.Is(err, sql.ErrNoRows):
			return shiftkey.NoSuchPolicyVersion(arn, id)
		case err != nil:
			return err
		}
		return setDefault(ctx, tx, arn, h, n, doc, at)
	})
}

// DeletePolicyVersion deletes a version other than the default, in one
// transaction.
func (d *DB) DeletePolicyVersion(ctx context.Context, arn, id string) error {
	return d.policyTx(ctx, arn, func(tx sqlConn, h *policyHead) error {
		n, ok := shiftkey.PolicyVersionNumber(id)
		if ok && n == h.def {
			return shiftkey.DefaultPolicyVersion()
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM policy_versions WHERE policy_id = ? AND version = ?`, h.id, n)
		if err != nil {
			return err
		}
		if k, _ := res.RowsAffected(); !ok || k == 0 {
			return shiftkey.NoSuchPolicyVersion(arn, id)
		}
		return nil
	})
}

// AttachPolicy attaches a managed policy; attaching twice is a no-op.
// Past shiftkey.MaxAttachedPolicies it is LimitExceeded: the count and the
// insert are one immediate (write-locked) transaction, so concurrent calls
// cannot both pass the count.
func (d *DB) AttachPolicy(ctx context.Context, kind shiftkey.EntityKind, owner, arn string) error {
	cond, args := ownerExists(kind, owner)
	err := d.admit(ctx, `SELECT `+cond+`,
		EXISTS (SELECT 1 FROM attachments WHERE kind = ? AND owner = ? AND policy_arn = ?),
		(SELECT count(*) FROM attachments WHERE kind = ? AND owner = ?)`, append(args, kind, owner, arn, kind, owner),
		func() error { return shiftkey.NoSuchEntity(kind, owner) }, shiftkey.MaxAttachedPolicies, shiftkey.AttachedPolicyQuota(kind),
		`INSERT INTO attachments (kind, owner, policy_arn) VALUES (?,?,?)`, kind, owner, arn)
	if isForeignKeyViolation(err) {
		return shiftkey.NoSuchPolicy(arn, true) // deleted meanwhile
	}
	return err
}

// admit runs insert in one immediate transaction with the check it
// reads first (one row: whether the owners exist, whether the row is
// there already, how many the owner holds): nothing when the row is there,
// missing's error when an owner is not, over when the owner holds max
// already.
func (d *DB) admit(ctx context.Context, check string, checkArgs []any, missing func() error, max int, over error, insert string, args ...any) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var exists, there bool
	var n int
	if err := tx.QueryRowContext(ctx, check, checkArgs...).Scan(&exists, &there, &n); err != nil {
		return err
	}
	switch {
	case !exists:
		tx.Rollback() // missing reads outside the transaction
		return missing()
	case there:
		return nil
	case n >= max:
		return over
	}
	if _, err := tx.ExecContext(ctx, insert, args...); err != nil {
		return err
	}
	return tx.Commit()
}

// DetachPolicy detaches a managed policy.
func (d *DB) DetachPolicy(ctx context.Context, kind shiftkey.EntityKind, owner, arn string) error {
	return d.execOne(ctx, shiftkey.NoSuchPolicy(arn, false),
		`DELETE FROM attachments WHERE kind = ? AND owner = ? AND policy_arn = ?`, kind, owner, arn)
}

// AttachedPolicies returns the managed policies attached to an entity.
func (d *DB) AttachedPolicies(ctx context.Context, kind shiftkey.EntityKind, owner string) ([]*shiftkey.ManagedPolicy, error) {
	return queryAll(ctx, d.db, func(row scanner) (*shiftkey.ManagedPolicy, error) { return scanPolicy(row) }, `SELECT `+policyRead+` FROM attachments a
		JOIN managed_policies p ON p.arn = a.policy_arn WHERE a.kind = ? AND a.owner = ? ORDER BY p.name`, kind, owner)
}

func prefixed(prefix, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = prefix + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// PolicyAttachmentCount counts the entities a policy is attached to.
func (d *DB) PolicyAttachmentCount(ctx context.Context, arn string) (int, error) {
	var n int
	err := d.db.QueryRowContext(ctx, `SELECT count(*) FROM attachments WHERE policy_arn = ?`, arn).Scan(&n)
	return n, err
}

// PolicyEntities lists the users, groups and roles a policy is attached to.
func (d *DB) PolicyEntities(ctx context.Context, arn string) ([]*shiftkey.Entity, error) {
	return queryAll(ctx, d.db, scanEntity, `SELECT `+prefixed("e.", entityColumns)+` FROM attachments a
		JOIN entities e ON e.kind = a.kind AND e.name = a.owner WHERE a.policy_arn = ? ORDER BY e.kind, e.name`, arn)
}

// Groups.

// AddUserToGroup makes user a member of group; twice is a no-op. Past
// shiftkey.MaxGroupsPerUser it is LimitExceeded, counted in the write (see
// AttachPolicy).
func (d *DB) AddUserToGroup(ctx context.Context, group, user string) error {
	gc, gargs := ownerExists(shiftkey.KindGroup, group)
	uc, uargs := ownerExists(shiftkey.KindUser, user)
	return d.admit(ctx, `SELECT `+gc+` AND `+uc+`,
		EXISTS (SELECT 1 FROM group_members WHERE group_name = ? AND user_name = ?),
		(SELECT count(*) FROM group_members WHERE user_name = ?)`, slices.Concat(gargs, uargs, []any{group, user, user}),
		func() error {
			return errors.Join(d.existsOr(ctx, shiftkey.KindGroup, group), d.existsOr(ctx, shiftkey.KindUser, user))
		}, shiftkey.MaxGroupsPerUser, shiftkey.GroupsPerUserQuota(),
		`INSERT INTO group_members (group_name, user_name) VALUES (?,?)`, group, user)
}

// RemoveUserFromGroup removes a membership.
func (d *DB) RemoveUserFromGroup(ctx context.Context, group, user string) error {
	return d.execOne(ctx, shiftkey.NotInGroup(user, group),
		`DELETE FROM group_members WHERE group_name = ? AND user_name = ?`, group, user)
}

// GroupsForUser returns the groups a user belongs to.
func (d *DB) GroupsForUser(ctx context.Context, user string) ([]*shiftkey.Entity, error) {
	return queryAll(ctx, d.db, scanEntity, `SELECT `+prefixed("e.", entityColumns)+` FROM group_members m
		JOIN entities e ON e.kind = 'group' AND e.name = m.group_name WHERE m.user_name = ? ORDER BY e.name`, user)
}

// GroupMembers returns the user names in a group.
func (d *DB) GroupMembers(ctx context.Context, group string) ([]string, error) {
	return queryAll(ctx, d.db, func(r scanner) (u string, err error) {
		return u, r.Scan(&u)
	}, `SELECT user_name FROM group_members WHERE group_name = ? ORDER BY user_name`, group)
}

// Tags.

// TagEntity adds or replaces tags, at most shiftkey.MaxTags in all.
func (d *DB) TagEntity(ctx context.Context, kind shiftkey.EntityKind, name string, tags []shiftkey.Tag) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := putTags(ctx, tx, kind, name, tags); err != nil {
		return err
	}
	// Counted in the (immediate) transaction: concurrent taggers adding
	// different keys cannot pass the quota together.
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM tags WHERE kind = ? AND owner = `+tagOwner(kind), kind, name).Scan(&n); err != nil {
		return err
	}
	if n > shiftkey.MaxTags {
		return shiftkey.TagQuota(kind)
	}
	return tx.Commit()
}

// putTags adds tags to the owner in tx, or replaces the value (and the
// key's case) of a tag whose key differs only in case; NoSuchEntity when
// there is no owner.
func putTags(ctx context.Context, tx sqlConn, kind shiftkey.EntityKind, name string, tags []shiftkey.Tag) error {
	cond, args := ownerExists(kind, name)
	for _, t := range tags {
		res, err := tx.ExecContext(ctx, `INSERT INTO tags (kind, owner, key, value, seq) SELECT ?,`+tagOwner(kind)+`,?,?, (SELECT coalesce(max(seq), 0) + 1 FROM tags)
			WHERE `+cond+`
			ON CONFLICT (kind, owner, key) DO UPDATE SET value = excluded.value, key = excluded.key`, append([]any{kind, name, t.Key, t.Value}, args...)...)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if kind == shiftkey.KindPolicy {
				return shiftkey.NoSuchPolicy(name, false)
			}
			return shiftkey.NoSuchEntity(kind, name)
		}
	}
	return nil
}

// UntagEntity removes tags by key; absent keys are ignored.
func (d *DB) UntagEntity(ctx context.Context, kind shiftkey.EntityKind, name string, keys []string) error {
	for _, k := range keys {
		if _, err := d.db.ExecContext(ctx, `DELETE FROM tags WHERE kind = ? AND owner = `+tagOwner(kind)+` AND key = ?`, kind, name, k); err != nil {
			return err
		}
	}
	return nil
}

// Tags returns an entity's tags in the order they were first set.
func (d *DB) Tags(ctx context.Context, kind shiftkey.EntityKind, name string) ([]shiftkey.Tag, error) {
	return queryAll(ctx, d.db, func(r scanner) (t shiftkey.Tag, err error) {
		return t, r.Scan(&t.Key, &t.Value)
	}, `SELECT key, value FROM tags WHERE kind = ? AND owner = `+tagOwner(kind)+` ORDER BY seq`, kind, name)
}

// Sessions.

// CreateSession stores STS session credentials: the secret sealed, the
// token as its hash.
func (d *DB) CreateSession(ctx context.Context, s *shiftkey.Session) error {
	tags, err := json.Marshal(s.Tags)
	if err != nil {
		return err
	}
	hash := s.TokenHash
	if s.Token != "" {
		hash = shiftkey.HashSessionToken(s.Token)
	}
	// One immediate transaction: the key read is the one that seals, even
	// while a rotation switches keys.
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	secret, sealed, err := d.seal(ctx, tx, s.Secret, sessionAAD(s.AccessKeyID))
	if err != nil {
		return err
	}
	if _, err = tx.ExecContext(ctx, `INSERT INTO sessions (access_key_id, secret, sealed, token, token_sha256, role_name, role_id, session_name, source_arn,
		source_access_key_id, session_policy, tags, created_at, expires_at) VALUES (?,?,?,'',?,?,?,?,?,?,?,?,?,?)`,
		s.AccessKeyID, secret, sealed, hash, s.RoleName, s.RoleID, s.SessionName, s.SourceARN, nullIfEmpty(s.SourceAccessKeyID), s.SessionPolicy, string(tags),
		millis(s.CreatedAt), millis(s.ExpiresAt)); err != nil {
		return err
	}
	return tx.Commit()
}

// Session returns the session whose temporary access key is id.
func (d *DB) Session(ctx context.Context, id string) (*shiftkey.Session, error) {
	var s *shiftkey.Session
	err := secretbox.RereadAfterRotation(func() (err error) { s, err = d.session(ctx, id); return err })
	return s, err
}

func (d *DB) session(ctx context.Context, id string) (*shiftkey.Session, error) {
	var s shiftkey.Session
	var tags, stored string
	var sealed bool
	var created, expires int64
	err := d.db.QueryRowContext(ctx, `SELECT access_key_id, secret, sealed, token_sha256, role_name, role_id, session_name, source_arn,
		coalesce(source_access_key_id, ''), session_policy, tags, created_at, expires_at FROM sessions WHERE access_key_id = ?`, id).
		Scan(&s.AccessKeyID, &stored, &sealed, &s.TokenHash, &s.RoleName, &s.RoleID, &s.SessionName, &s.SourceARN, &s.SourceAccessKeyID,
			&s.SessionPolicy, &tags, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, shiftkey.NoSuchSession(id)
	}
	if err != nil {
		return nil, err
	}
	if s.Secret, err = d.unseal(ctx, stored, sealed, sessionAAD(s.AccessKeyID)); err != nil {
		return nil, fmt.Errorf("session %s: %w", s.AccessKeyID, err)
	}
	if err := json.Unmarshal([]byte(tags), &s.Tags); err != nil {
		return nil, err
	}
	s.CreatedAt, s.ExpiresAt = fromMillis(created), fromMillis(expires)
	return &s, nil
}

// DeleteExpiredSessions removes sessions that expired before t, and the
// records of ended ones, which nothing can use past their expiry.
func (d *DB) DeleteExpiredSessions(ctx context.Context, before time.Time) (int, error) {
	res, err := d.db.ExecContext(ctx, `DELETE FROM sessions WHERE expires_at <= ?`, millis(before))
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	if _, err := d.db.ExecContext(ctx, `DELETE FROM ended_sessions WHERE expires_at <= ?`, millis(before)); err != nil {
		return int(n), err
	}
	return int(n), nil
}

// RecordDecision appends an authorization decision.
func (d *DB) RecordDecision(ctx context.Context, r *shiftkey.DecisionRecord) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO decisions (request_id, at, principal, action, resource, outcome, explanation)
		VALUES (?,?,?,?,?,?,?)`, r.RequestID, millis(r.At), r.Principal, r.Action, r.Resource, r.Outcome, r.Explanation)
	return err
}

// Decisions returns the decisions recorded for a request, in order.
func (d *DB) Decisions(ctx context.Context, requestID string) ([]*shiftkey.DecisionRecord, error) {
	return queryAll(ctx, d.db, func(row scanner) (*shiftkey.DecisionRecord, error) {
		var r shiftkey.DecisionRecord
		var at int64
		if err := row.Scan(&r.RequestID, &at, &r.Principal, &r.Action, &r.Resource, &r.Outcome, &r.Explanation); err != nil {
			return nil, err
		}
		r.At = fromMillis(at)
		return &r, nil
	}, `SELECT request_id, at, principal, action, resource, outcome, explanation FROM decisions WHERE request_id = ? ORDER BY seq`, requestID)
}
