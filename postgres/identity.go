package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/secretbox"
)

const entityColumns = `kind, name, id, path, arn, created_at, assume_role_policy, description, max_session_duration, trust_principal_ids, permissions_boundary`

func scanEntity(row pgx.Row) (*shiftkey.Entity, error) {
	var e shiftkey.Entity
	var boundary *string
	err := row.Scan(&e.Kind, &e.Name, &e.ID, &e.Path, &e.ARN, &e.CreatedAt, &e.AssumeRolePolicy, &e.Description, &e.MaxSessionDuration, &e.TrustPrincipalIDs, &boundary)
	e.CreatedAt = utc(e.CreatedAt)
	if boundary != nil {
		e.PermissionsBoundary = *boundary
	}
	return &e, err
}

// CreateEntity stores a new user, group or role with its tags (e.Tags, at
// most shiftkey.MaxTags, keys distinct regardless of case), within the
// account's quota of its kind (shiftkey.MaxEntities): one transaction.
func (d *DB) CreateEntity(ctx context.Context, e *shiftkey.Entity) error {
	if len(e.Tags) > shiftkey.MaxTags {
		return shiftkey.TagQuota(e.Kind)
	}
	inserts := []stmt{st(`INSERT INTO entities (`+entityColumns+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11)`,
		e.Kind, e.Name, e.ID, e.Path, e.ARN, e.CreatedAt, e.AssumeRolePolicy, e.Description, e.MaxSessionDuration, e.TrustPrincipalIDs,
		nullIfEmpty(e.PermissionsBoundary))}
	for _, t := range e.Tags {
		inserts = append(inserts, st(tagUpsert(e.Kind), e.Kind, e.Name, t.Key, t.Value))
	}
	if e.PermissionsBoundary != "" {
		return d.createBounded(ctx, e, inserts)
	}
	return d.insertWithin(ctx, change(e.Kind, e.Name), shiftkey.EntityExists(e.Kind, e.Name), shiftkey.AccountQuota(e.Kind), shiftkey.MaxEntities[e.Kind],
		st(`SELECT count(*) FROM entities WHERE kind = $1`, e.Kind), inserts...)
}

// quotaLock is the advisory lock key ("iamquota" in ASCII) that orders
// the creations counted against an account quota, on every replica.
const quotaLock = 0x69616d71756f7461

// insertWithin runs inserts and then count in one transaction holding
// quotaLock, committed only when count is at most max: concurrent
// inserts, on any replica, count each other. A unique violation of the
// first insert is conflict, one past max is over.
func (d *DB) insertWithin(ctx context.Context, changes []shiftkey.Change, conflict, over error, max int, count stmt, inserts ...stmt) error {
	return d.inTx(ctx, func(tx pgx.Tx, notify func(...shiftkey.Change)) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(quotaLock)); err != nil {
			return err
		}
		for i, insert := range inserts {
			if _, err := tx.Exec(ctx, insert.sql, insert.args...); i == 0 && isCode(err, uniqueViolation) {
				return conflict
			} else if err != nil {
				return err
			}
		}
		var n int
		if err := tx.QueryRow(ctx, count.sql, count.args...).Scan(&n); err != nil {
			return err
		}
		if n > max {
			return over
		}
		notify(changes...)
		return nil
	})
}

// Entity returns the entity of kind called name (any case).
func (d *DB) Entity(ctx context.Context, kind shiftkey.EntityKind, name string) (*shiftkey.Entity, error) {
	return queryOne(ctx, d.pool, scanEntity, shiftkey.NoSuchEntity(kind, name), `SELECT `+entityColumns+` FROM entities WHERE kind = $1 AND name = $2`, kind, name)
}

// EntityByID returns the entity of kind whose unique id is id.
func (d *DB) EntityByID(ctx context.Context, kind shiftkey.EntityKind, id string) (*shiftkey.Entity, error) {
	return queryOne(ctx, d.pool, scanEntity, shiftkey.NoSuchEntityID(kind, id), `SELECT `+entityColumns+` FROM entities WHERE kind = $1 AND id = $2`, kind, id)
}

// Entities lists the entities of kind whose path starts with pathPrefix.
func (d *DB) Entities(ctx context.Context, kind shiftkey.EntityKind, pathPrefix string) ([]*shiftkey.Entity, error) {
	return queryAll(ctx, d.pool, scanEntity, `SELECT `+entityColumns+` FROM entities WHERE kind = $1 AND left(path, length($2)) = $2 ORDER BY name`,
		kind, pathPrefix)
}

// UpdateRole sets the role's settings that fields names.
func (d *DB) UpdateRole(ctx context.Context, r *shiftkey.Entity, fields shiftkey.RoleFields) error {
	set, args := "name = name", []any{} // none named: only whether the role exists
	add := func(col string, v any) {
		args = append(args, v)
		if len(args) == 1 {
			set = fmt.Sprintf("%s = $1", col)
		} else {
			set += fmt.Sprintf(", %s = $%d", col, len(args))
		}
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
	return d.writeOne(ctx, shiftkey.NoSuchEntity(shiftkey.KindRole, r.Name), nil, change(shiftkey.KindRole, r.Name),
		fmt.Sprintf(`UPDATE entities SET %s WHERE kind = $%d AND name = $%d`, set, len(args)+1, len(args)+2), append(args, shiftkey.KindRole, r.Name)...)
}

// renames are the statements that move what hangs off an entity's name
// ($2) to its new name ($1), by kind of entity, each RETURNING the other
// entities (of the kind given) or keys whose cached state names it.
var renames = map[shiftkey.EntityKind][]struct {
	sql    string
	notify shiftkey.EntityKind // "" for none
}{
	shiftkey.KindUser: {
		{`UPDATE inline_policies SET owner = $1 WHERE kind = 'user' AND owner = $2`, ""},
		{`UPDATE attachments SET owner = $1 WHERE kind = 'user' AND owner = $2`, ""},
		{`UPDATE tags SET owner = $1 WHERE kind = 'user' AND owner = $2`, ""},
		{`UPDATE access_keys SET user_name = $1 WHERE user_name = $2 RETURNING id`, shiftkey.KindAccessKey},
		{`UPDATE group_members SET user_name = $1 WHERE user_name = $2 RETURNING group_name`, shiftkey.KindGroup},
	},
	shiftkey.KindGroup: {
		{`UPDATE inline_policies SET owner = $1 WHERE kind = 'group' AND owner = $2`, ""},
		{`UPDATE attachments SET owner = $1 WHERE kind = 'group' AND owner = $2`, ""},
		{`UPDATE tags SET owner = $1 WHERE kind = 'group' AND owner = $2`, ""},
		{`UPDATE group_members SET group_name = $1 WHERE group_name = $2 RETURNING user_name`, shiftkey.KindUser},
	},
}

// RenameEntity renames a user or group with what hangs off its name, in
// one transaction that tells the other replicas of the entity under both
// names and of the keys and memberships that named it. The entity's row
// is locked first: writes that hang rows off it (ownerRow's FOR SHARE)
// wait for the rename and then find no owner under the old name, or run
// before it and are moved with the rest.
func (d *DB) RenameEntity(ctx context.Context, kind shiftkey.EntityKind, from, to *shiftkey.Entity) error {
	stmts, ok := renames[kind]
	if !ok {
		return fmt.Errorf("RenameEntity: a %s cannot be renamed", kind)
	}
	return d.inTx(ctx, func(tx pgx.Tx, notify func(...shiftkey.Change)) error {
		type row struct{ name, id, arn string }
		cur, err := queryOne(ctx, tx, func(r pgx.Row) (v row, err error) { return v, r.Scan(&v.name, &v.id, &v.arn) },
			shiftkey.NoSuchEntity(kind, from.Name), `SELECT name, id, arn FROM entities WHERE kind = $1 AND name = $2 FOR UPDATE`, kind, from.Name)
		if err != nil {
			return err
		}
		// Locked: the entity the caller read, or another since.
		if from.ID != "" && cur.id != from.ID || from.ARN != "" && cur.arn != from.ARN {
			return shiftkey.EntityChanged(kind, from.Name)
		}
		old := cur.name
		// The name in another case is the same key (shiftkey_nocase): no conflict.
		if _, err := tx.Exec(ctx, `UPDATE entities SET name = $1, path = $2, arn = $3 WHERE kind = $4 AND name = $5`,
			to.Name, to.Path, to.ARN, kind, old); isCode(err, uniqueViolation) {
			return shiftkey.EntityExists(kind, to.Name)
		} else if err != nil {
			return err
		}
		notify(shiftkey.Change{Kind: kind, Name: old}, shiftkey.Change{Kind: kind, Name: to.Name})
		for _, s := range stmts {
			if s.notify == "" {
				if _, err := tx.Exec(ctx, s.sql, to.Name, old); err != nil {
					return err
				}
				continue
			}
			names, err := queryAll(ctx, tx, scanString, s.sql, to.Name, old)
			if err != nil {
				return err
			}
			for _, n := range names {
				notify(shiftkey.Change{Kind: s.notify, Name: n})
			}
		}
		return nil
	})
}

// DeleteEntity removes an entity and what hangs off it.
func (d *DB) DeleteEntity(ctx context.Context, kind shiftkey.EntityKind, name string) error {
	return d.inTx(ctx, func(tx pgx.Tx, notify func(...shiftkey.Change)) error {
		tag, err := tx.Exec(ctx, `DELETE FROM entities WHERE kind = $1 AND name = $2`, kind, name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return shiftkey.NoSuchEntity(kind, name)
		}
		notify(shiftkey.Change{Kind: kind, Name: name})
		for _, q := range []string{
			`DELETE FROM inline_policies WHERE kind = $1 AND owner = $2`,
			`DELETE FROM attachments WHERE kind = $1 AND owner = $2`,
			`DELETE FROM tags WHERE kind = $1 AND owner = $2`,
		} {
			if _, err := tx.Exec(ctx, q, kind, name); err != nil {
				return err
			}
		}
		// cascade runs a DELETE … RETURNING of the rows that tied the
		// entity to others, and tells each other entity's change (of kind).
		cascade := func(kind shiftkey.EntityKind, sql string) error {
			names, err := queryAll(ctx, tx, scanString, sql, name)
			for _, n := range names {
				notify(shiftkey.Change{Kind: kind, Name: n})
			}
			return err
		}
		switch kind {
		case shiftkey.KindUser:
			if err := cascade(shiftkey.KindAccessKey, `DELETE FROM access_keys WHERE user_name = $1 RETURNING id`); err != nil {
				return err
			}
			return cascade(shiftkey.KindGroup, `DELETE FROM group_members WHERE user_name = $1 RETURNING group_name`)
		case shiftkey.KindGroup:
			return cascade(shiftkey.KindUser, `DELETE FROM group_members WHERE group_name = $1 RETURNING user_name`)
		}
		return nil
	})
}

func scanString(r pgx.Row) (s string, err error) { return s, r.Scan(&s) }

// Access keys.

// CreateAccessKey stores a new access key for an existing user that has
// fewer than shiftkey.MaxAccessKeysPerUser. The user's row is locked (FOR
// UPDATE) before the keys are counted, so concurrent creations for one
// user, on any replica, count one after the other.
func (d *DB) CreateAccessKey(ctx context.Context, k *shiftkey.AccessKey) error {
	return d.inTx(ctx, func(tx pgx.Tx, notify func(...shiftkey.Change)) error {
		var userID string
		lockUser := func() (string, error) {
			var name string
			err := tx.QueryRow(ctx, `SELECT name, id FROM entities WHERE kind = $1 AND name = $2 FOR UPDATE`, shiftkey.KindUser, k.UserName).Scan(&name, &userID)
			if errors.Is(err, pgx.ErrNoRows) {
				err = shiftkey.NoSuchEntity(shiftkey.KindUser, k.UserName)
			}
			return name, err
		}
		countKeys := func(user string) (n int, err error) {
			return n, tx.QueryRow(ctx, `SELECT count(*) FROM access_keys WHERE user_name = $1`, user).Scan(&n)
		}
		if err := shiftkey.AdmitAccessKey(lockUser, countKeys); err != nil {
			return err
		}
		secret, sealed, err := d.seal(ctx, tx, k.Secret, accessKeyAAD(k.ID))
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO access_keys (id, secret, sealed, user_name, user_id, status, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
			k.ID, secret, sealed, k.UserName, userID, k.Status, k.CreatedAt); err != nil {
			return err
		}
		notify(shiftkey.Change{Kind: shiftkey.KindAccessKey, Name: k.ID})
		return nil
	})
}

func keyNotFound(id string) error {
	return shiftkey.NoSuchAccessKey(id)
}

// accessKeysWithUsers joins each key (k) to its user (u) by the user's id:
// the key's user_id or, for a key an older version wrote (NULL), the id of
// the user its user_name names. One statement: one snapshot of both.
const accessKeysWithUsers = `access_keys k JOIN entities u ON u.kind = 'user' AND u.id = coalesce(k.user_id,
	(SELECT n.id FROM entities n WHERE n.kind = 'user' AND n.name = k.user_name))`

// usersWithAccessKeys is accessKeysWithUsers from the users' side, for a
// user's keys (the same rows; by the keys' indexes).
const usersWithAccessKeys = `entities u JOIN access_keys k ON k.user_id = u.id OR k.user_id IS NULL AND k.user_name = u.name`

const accessKeyColumns = `k.id, k.secret, k.sealed, u.name, u.id, k.status, k.created_at, k.last_used_at, coalesce(k.last_used_service, ''), coalesce(k.last_used_region, '')`

func (d *DB) scanAccessKey(ctx context.Context, row pgx.Row) (*shiftkey.AccessKey, error) {
	var k shiftkey.AccessKey
	var used *time.Time
	var stored string
	var sealed bool
	if err := row.Scan(&k.ID, &stored, &sealed, &k.UserName, &k.UserID, &k.Status, &k.CreatedAt, &used, &k.LastUsedService, &k.LastUsedRegion); err != nil {
		return nil, err
	}
	if used != nil {
		k.LastUsed = utc(*used)
	}
	var err error
	if k.Secret, err = d.unseal(ctx, stored, sealed, accessKeyAAD(k.ID)); err != nil {
		return nil, fmt.Errorf("access key %s: %w", k.ID, err)
	}
	k.CreatedAt = utc(k.CreatedAt)
	return &k, nil
}

// AccessKey returns the access key with the given id, with its user as
// the one statement finds it by id.
func (d *DB) AccessKey(ctx context.Context, id string) (*shiftkey.AccessKey, error) {
	scan := func(r pgx.Row) (*shiftkey.AccessKey, error) { return d.scanAccessKey(ctx, r) }
	var k *shiftkey.AccessKey
	err := secretbox.RereadAfterRotation(func() (err error) {
		k, err = queryOne(ctx, d.pool, scan, keyNotFound(id), `SELECT `+accessKeyColumns+` FROM `+accessKeysWithUsers+` WHERE k.id = $1`, id)
		return err
	})
	return k, err
}

// AccessKeys returns the access keys of a user, oldest first.
func (d *DB) AccessKeys(ctx context.Context, userName string) ([]*shiftkey.AccessKey, error) {
	scan := func(r pgx.Row) (*shiftkey.AccessKey, error) { return d.scanAccessKey(ctx, r) }
	var keys []*shiftkey.AccessKey
	err := secretbox.RereadAfterRotation(func() (err error) {
		keys, err = queryAll(ctx, d.pool, scan, `SELECT `+accessKeyColumns+` FROM `+usersWithAccessKeys+` WHERE u.kind = 'user' AND u.name = $1 ORDER BY k.created_at, k.id`, userName)
		return err
	})
	return keys, err
}

// UpdateAccessKey sets a key's status.
func (d *DB) UpdateAccessKey(ctx context.Context, id, status string) error {
	return d.writeOne(ctx, keyNotFound(id), nil, change(shiftkey.KindAccessKey, id), `UPDATE access_keys SET status = $1 WHERE id = $2`, status, id)
}

// RecordAccessKeyUse records a key's use, at most once a
// shiftkey.KeyUseInterval.
func (d *DB) RecordAccessKeyUse(ctx context.Context, id string, at time.Time, service, region string) error {
	_, err := d.write(ctx, change(shiftkey.KindAccessKey, id), st(`UPDATE access_keys SET last_used_at = $1, last_used_service = $2, last_used_region = $3
		WHERE id = $4 AND (last_used_at IS NULL OR last_used_at <= $5)`, at, service, region, id, at.Add(-shiftkey.KeyUseInterval)))
	return err
}

// DeleteAccessKey removes a key.
func (d *DB) DeleteAccessKey(ctx context.Context, id string) error {
	return d.writeOne(ctx, keyNotFound(id), nil, change(shiftkey.KindAccessKey, id), `DELETE FROM access_keys WHERE id = $1`, id)
}

// Inline policies.

// PutInlinePolicy creates or replaces an inline policy.
func (d *DB) PutInlinePolicy(ctx context.Context, kind shiftkey.EntityKind, owner string, p shiftkey.PolicyDocument) error {
	return d.writeOne(ctx, shiftkey.NoSuchEntity(kind, owner), nil, change(kind, owner), `INSERT INTO inline_policies (kind, owner, name, document)
		SELECT $1, $2, $3, $4 `+ownerRow(kind)+`
		ON CONFLICT (kind, owner, name) DO UPDATE SET document = excluded.document`, kind, owner, p.Name, p.Document)
}

// PutInlinePolicyAdmitted creates or replaces an inline policy once admit
// accepts the owner's policies: the owner's row is locked (FOR UPDATE)
// before they are read, so concurrent puts for one owner, on any replica,
// are checked one after the other.
func (d *DB) PutInlinePolicyAdmitted(ctx context.Context, kind shiftkey.EntityKind, owner string, p shiftkey.PolicyDocument, admit func([]shiftkey.PolicyDocument) error) error {
	return d.inTx(ctx, func(tx pgx.Tx, notify func(...shiftkey.Change)) error {
		if err := lockOwner(ctx, tx, kind, owner); err != nil {
			return err
		}
		have, err := queryAll(ctx, tx, scanInline, `SELECT name, document FROM inline_policies WHERE kind = $1 AND owner = $2 ORDER BY name`, kind, owner)
		if err != nil {
			return err
		}
		if err := admit(have); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO inline_policies (kind, owner, name, document) VALUES ($1, $2, $3, $4)
			ON CONFLICT (kind, owner, name) DO UPDATE SET document = excluded.document`, kind, owner, p.Name, p.Document); err != nil {
			return err
		}
		notify(change(kind, owner)...)
		return nil
	})
}

func scanInline(r pgx.Row) (p shiftkey.PolicyDocument, err error) {
	return p, r.Scan(&p.Name, &p.Document)
}

// ownerRow is the FROM clause (kind and name as $1 and $2) under which a
// row hanging off an entity (or a cluster's tags) is written: one row if
// the owner exists, share-locked. Owners are names: written for one being
// deleted (the caller checked it first), the row would pass to one created
// later under the name. The lock orders the write with the delete: the
// delete waits for it and then removes its row too, or it waits for the
// delete and then finds no owner.
func ownerRow(kind shiftkey.EntityKind) string { return ownerFrom(kind) + ` FOR SHARE` }

// ownerLocked selects the owner's row (kind and name as $1 and $2) locked
// FOR UPDATE: a write that counts what hangs off it (a quota) holds it,
// so that concurrent writes for one owner, on any replica, count one
// after the other. No row: the owner does not exist.
func ownerLocked(kind shiftkey.EntityKind) string {
	return `SELECT 1 ` + ownerFrom(kind) + ` FOR UPDATE`
}

// lockOwner locks the owner's row (ownerLocked) in tx, or answers
// NoSuchEntity when there is none.
func lockOwner(ctx context.Context, tx pgx.Tx, kind shiftkey.EntityKind, name string) error {
	tag, err := tx.Exec(ctx, ownerLocked(kind), kind, name)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		if kind == shiftkey.KindPolicy {
			return shiftkey.NoSuchPolicy(name, false)
		}
		return shiftkey.NoSuchEntity(kind, name)
	}
	return nil
}

// ownerFrom is the FROM clause of the owner's row, unlocked. A managed
// policy's is the row its version writes and DeleteManagedPolicy lock.
func ownerFrom(kind shiftkey.EntityKind) string {
	switch kind {
	case shiftkey.KindCluster:
		return `FROM clusters WHERE $1::text IS NOT NULL AND identifier = $2`
	case shiftkey.KindPolicy:
		return `FROM managed_policies WHERE $1::text IS NOT NULL AND arn = $2`
	}
	return `FROM entities WHERE kind = $1 AND name = $2`
}

// tagOwner is the SQL of the tags' owner column for the owner named $2.
// A managed policy's tags are kept under its id, not its ARN, as its
// versions are: a policy deleted and created again under the ARN is
// another policy, and one deleted by a shiftkey that kept no policy tags
// leaves rows that no later policy reads.
func tagOwner(kind shiftkey.EntityKind) string {
	if kind == shiftkey.KindPolicy {
		return `(SELECT id FROM managed_policies WHERE arn = $2)`
	}
	return `$2`
}

// existsOr is nil when the owner exists, else NoSuchEntity: why an
// insert that may be a no-op (twice) wrote nothing.
func (d *DB) existsOr(ctx context.Context, kind shiftkey.EntityKind, name string) error {
	var ok bool
	if err := d.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 `+ownerFrom(kind)+`)`, kind, name).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return shiftkey.NoSuchEntity(kind, name)
	}
	return nil
}

// InlinePolicies returns the inline policies of an entity ordered by name.
func (d *DB) InlinePolicies(ctx context.Context, kind shiftkey.EntityKind, owner string) ([]shiftkey.PolicyDocument, error) {
	return queryAll(ctx, d.pool, func(r pgx.Row) (p shiftkey.PolicyDocument, err error) {
		return p, r.Scan(&p.Name, &p.Document)
	}, `SELECT name, document FROM inline_policies WHERE kind = $1 AND owner = $2 ORDER BY name`, kind, owner)
}

// DeleteInlinePolicy removes an inline policy.
func (d *DB) DeleteInlinePolicy(ctx context.Context, kind shiftkey.EntityKind, owner, name string) error {
	return d.writeOne(ctx, shiftkey.NoSuchInlinePolicy(kind, name), nil,
		change(kind, owner), `DELETE FROM inline_policies WHERE kind = $1 AND owner = $2 AND name = $3`, kind, owner, name)
}

// Managed policies.

const policyColumns = `arn, name, id, path, description, document, created_at, updated_at`

// policyRead is what a read of p (managed_policies) selects: policyColumns,
// the default version's number (NULL, from before versions: 1) and the
// newest version's CreateDate.
var policyRead = prefixed("p.", policyColumns) + `, coalesce(p.default_version, 1),
	greatest(p.updated_at, (SELECT max(v.created_at) FROM policy_versions v WHERE v.policy_id = p.id))`

func scanPolicy(row pgx.Row, more ...any) (*shiftkey.ManagedPolicy, error) {
	var p shiftkey.ManagedPolicy
	var def int64
	err := row.Scan(append([]any{&p.ARN, &p.Name, &p.ID, &p.Path, &p.Description, &p.Document, &p.CreatedAt, &p.UpdatedAt, &def, &p.NewestVersionAt}, more...)...)
	p.CreatedAt, p.UpdatedAt, p.NewestVersionAt = utc(p.CreatedAt), utc(p.UpdatedAt), utc(p.NewestVersionAt)
	p.DefaultVersion = shiftkey.PolicyVersionID(def)
	return &p, err
}

func scanOnePolicy(row pgx.Row) (*shiftkey.ManagedPolicy, error) { return scanPolicy(row) }

// CreateManagedPolicy stores a customer-managed policy, within the
// account's quota (shiftkey.MaxManagedPolicies). Versions a policy of its
// id left (deleted by a shiftkey before versions) go.
func (d *DB) CreateManagedPolicy(ctx context.Context, p *shiftkey.ManagedPolicy) error {
	if len(p.Tags) > shiftkey.MaxTags {
		return shiftkey.TagQuota(shiftkey.KindPolicy)
	}
	inserts := []stmt{st(`INSERT INTO managed_policies (`+policyColumns+`) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)`,
		p.ARN, p.Name, p.ID, p.Path, p.Description, p.Document, p.CreatedAt, p.UpdatedAt),
		st(`DELETE FROM policy_versions WHERE policy_id = $1`, p.ID)}
	for _, t := range p.Tags { // in the write: a failure leaves neither
		inserts = append(inserts, st(tagUpsert(shiftkey.KindPolicy), shiftkey.KindPolicy, p.ARN, t.Key, t.Value))
	}
	return d.insertWithin(ctx, change(shiftkey.KindPolicy, p.ARN), shiftkey.PolicyExists(p.Name), shiftkey.AccountQuota(shiftkey.KindPolicy), shiftkey.MaxManagedPolicies,
		st(`SELECT count(*) FROM managed_policies`), inserts...)
}

// UpdateManagedPolicy replaces a policy's description and default
// document and drops its other versions, in one transaction.
func (d *DB) UpdateManagedPolicy(ctx context.Context, p *shiftkey.ManagedPolicy) error {
	return d.inTx(ctx, func(tx pgx.Tx, notify func(...shiftkey.Change)) error {
		var id string
		err := tx.QueryRow(ctx, `UPDATE managed_policies SET document = $1, description = $2, updated_at = $3 WHERE arn = $4 RETURNING id`,
			p.Document, p.Description, p.UpdatedAt, p.ARN).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return shiftkey.NoSuchPolicy(p.ARN, false)
		} else if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM policy_versions WHERE policy_id = $1`, id); err != nil {
			return err
		}
		notify(change(shiftkey.KindPolicy, p.ARN)...)
		return nil
	})
}

// ManagedPolicy returns the policy with the given ARN.
func (d *DB) ManagedPolicy(ctx context.Context, arn string) (*shiftkey.ManagedPolicy, error) {
	return queryOne(ctx, d.pool, scanOnePolicy, shiftkey.NoSuchPolicy(arn, true),
		`SELECT `+policyRead+` FROM managed_policies p WHERE p.arn = $1`, arn)
}

// ManagedPolicies lists the policies whose path starts with pathPrefix,
// by name, with their attachment counts.
func (d *DB) ManagedPolicies(ctx context.Context, pathPrefix string) ([]*shiftkey.ManagedPolicy, error) {
	return queryAll(ctx, d.pool, func(row pgx.Row) (*shiftkey.ManagedPolicy, error) {
		var n int
		p, err := scanPolicy(row, &n)
		p.AttachmentCount = n
		return p, err
	}, `SELECT `+policyRead+`, (SELECT count(*) FROM attachments a WHERE a.policy_arn = p.arn)
		FROM managed_policies p WHERE left(p.path, length($1)) = $1 ORDER BY p.name`, pathPrefix)
}

// DeleteManagedPolicy removes a policy: not while it has versions
// besides the default (counted with its row locked, which
// CreatePolicyVersion locks too), nor while attached (one attached
// meanwhile, the caller having counted none, is DeleteConflict).
func (d *DB) DeleteManagedPolicy(ctx context.Context, arn string) error {
	err := d.policyWrite(ctx, arn, func(tx pgx.Tx, h *policyHead) error {
		if h.others > 0 {
			return shiftkey.PolicyHasVersions()
		}
		if err := notABoundary(ctx, tx, arn); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM tags WHERE kind = $1 AND owner = $2`, shiftkey.KindPolicy, h.id); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM managed_policies WHERE arn = $1`, arn)
		return err
	})
	if isCode(err, foreignKeyViolation) {
		return shiftkey.PolicyAttached()
	}
	return err
}

// policyHead is what a version write reads of its policy, its row
// locked: the id, the default version (number, document, date), the next
// version's number and how many other versions there are.
type policyHead struct {
	id, document      string
	def, next, others int64
	updated           time.Time
}

// lockPolicy locks the policy's row (FOR UPDATE), so that the version
// writes of one policy, on any replica, run one after the other, and then
// reads its head: in a statement of its own, whose snapshot (READ
// COMMITTED) sees what the writes it waited for committed.
func lockPolicy(ctx context.Context, tx pgx.Tx, arn string) (*policyHead, error) {
	tag, err := tx.Exec(ctx, `SELECT 1 FROM managed_policies WHERE arn = $1 FOR UPDATE`, arn)
	if err != nil {
		return nil, err
	}
	if tag.RowsAffected() == 0 {
		return nil, shiftkey.NoSuchPolicy(arn, false)
	}
	var h policyHead
	err = tx.QueryRow(ctx, `SELECT p.id, p.document, coalesce(p.default_version, 1), coalesce(p.next_version, 2), p.updated_at,
		(SELECT count(*) FROM policy_versions v WHERE v.policy_id = p.id) FROM managed_policies p WHERE p.arn = $1`, arn).
		Scan(&h.id, &h.document, &h.def, &h.next, &h.updated, &h.others)
	return &h, err
}

// setDefault makes version n (document doc, created at) the policy's
// default: the default it replaces becomes one of its other versions.
func setDefault(ctx context.Context, tx pgx.Tx, arn string, h *policyHead, n int64, doc string, at time.Time) error {
	if _, err := tx.Exec(ctx, `INSERT INTO policy_versions (policy_id, version, document, created_at) VALUES ($1,$2,$3,$4)`,
		h.id, h.def, h.document, h.updated); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE managed_policies SET document = $1, default_version = $2, updated_at = $3 WHERE arn = $4`, doc, n, at, arn)
	return err
}

// CreatePolicyVersion adds a version with the policy's row locked:
// concurrent calls, on any replica, count and number one after the other.
// A new default is NOTIFYd, so that every replica's cache drops the
// document it held.
func (d *DB) CreatePolicyVersion(ctx context.Context, arn string, v *shiftkey.PolicyVersion) error {
	var n int64
	err := d.policyWrite(ctx, arn, func(tx pgx.Tx, h *policyHead) error {
		if h.others+1 >= shiftkey.MaxPolicyVersions {
			return shiftkey.PolicyVersionQuota()
		}
		n = h.next
		if _, err := tx.Exec(ctx, `UPDATE managed_policies SET next_version = $1 WHERE arn = $2`, n+1, arn); err != nil {
			return err
		}
		if v.IsDefault {
			return setDefault(ctx, tx, arn, h, n, v.Document, v.CreatedAt)
		}
		_, err := tx.Exec(ctx, `INSERT INTO policy_versions (policy_id, version, document, created_at) VALUES ($1,$2,$3,$4)`,
			h.id, n, v.Document, v.CreatedAt)
		return err
	})
	if err == nil {
		v.ID = shiftkey.PolicyVersionID(n)
	}
	return err
}

// policyWrite runs f with the policy arn's head, its row locked
// (lockPolicy), in one transaction, and tells the other replicas of the
// policy's change when f succeeds.
//
// Two replicas or Terraform runs writing one policy at once are ordered
// by the row lock (at READ COMMITTED, readCommitted); a conflict that
// still rolls the transaction back (a deadlock, a serialization failure)
// runs it again (retryConflicts), so f may run more than once. In a
// Declaring run the write is a savepoint of the run's transaction, which
// a conflict fails as a whole: it is not retried there.
func (d *DB) policyWrite(ctx context.Context, arn string, f func(tx pgx.Tx, h *policyHead) error) error {
	write := func() error {
		return d.inTx(ctx, func(tx pgx.Tx, notify func(...shiftkey.Change)) error {
			h, err := lockPolicy(ctx, tx, arn)
			if err != nil {
				return err
			}
			if err := f(tx, h); err != nil {
				return err
			}
			notify(change(shiftkey.KindPolicy, arn)...)
			return nil
		})
	}
	if joined(ctx) != nil {
		return write()
	}
	return retryConflicts(ctx, "managed policy", conflictRetries, write)
}

// PolicyVersions returns a policy's versions, newest first: one
// statement, so one snapshot of the default and the others.
func (d *DB) PolicyVersions(ctx context.Context, arn string) ([]*shiftkey.PolicyVersion, error) {
	out, err := queryAll(ctx, d.pool, func(row pgx.Row) (*shiftkey.PolicyVersion, error) {
		var v shiftkey.PolicyVersion
		var n int64
		err := row.Scan(&n, &v.Document, &v.CreatedAt, &v.IsDefault)
		v.ID, v.CreatedAt = shiftkey.PolicyVersionID(n), utc(v.CreatedAt)
		return &v, err
	}, `SELECT coalesce(p.default_version, 1), p.document, p.updated_at, true FROM managed_policies p WHERE p.arn = $1
		UNION ALL SELECT v.version, v.document, v.created_at, false FROM policy_versions v JOIN managed_policies p ON v.policy_id = p.id WHERE p.arn = $1`, arn)
	if err == nil && len(out) == 0 {
		err = shiftkey.NoSuchPolicy(arn, false)
	}
	return shiftkey.NewestVersionFirst(out), err
}

// SetDefaultPolicyVersion makes a version the default, the policy's row
// locked.
func (d *DB) SetDefaultPolicyVersion(ctx context.Context, arn, id string) error {
	return d.policyWrite(ctx, arn, func(tx pgx.Tx, h *policyHead) error {
		n, ok := shiftkey.PolicyVersionNumber(id)
		if ok && n == h.def {
			return nil
		}
		var doc string
		var at time.Time
		err := tx.QueryRow(ctx, `DELETE FROM policy_versions WHERE policy_id = $1 AND version = $2 RETURNING document, created_at`, h.id, n).Scan(&doc, &at)
		switch {
		case !ok || errors.Is(err, pgx.ErrNoRows):
			return shiftkey.NoSuchPolicyVersion(arn, id)
		case err != nil:
			return err
		}
		return setDefault(ctx, tx, arn, h, n, doc, at)
	})
}

// DeletePolicyVersion deletes a version other than the default, the
// policy's row locked.
func (d *DB) DeletePolicyVersion(ctx context.Context, arn, id string) error {
	return d.policyWrite(ctx, arn, func(tx pgx.Tx, h *policyHead) error {
		n, ok := shiftkey.PolicyVersionNumber(id)
		if ok && n == h.def {
			return shiftkey.DefaultPolicyVersion()
		}
		tag, err := tx.Exec(ctx, `DELETE FROM policy_versions WHERE policy_id = $1 AND version = $2`, h.id, n)
		if err != nil {
			return err
		}
		if !ok || tag.RowsAffected() == 0 {
			return shiftkey.NoSuchPolicyVersion(arn, id)
		}
		return nil
	})
}

// AttachPolicy attaches a managed policy; attaching twice is a no-op.
// Past shiftkey.MaxAttachedPolicies it is LimitExceeded: the owner's row is
// locked (FOR UPDATE) before its attachments are counted, so concurrent
// attachments to one entity, on any replica, count one after the other.
func (d *DB) AttachPolicy(ctx context.Context, kind shiftkey.EntityKind, owner, arn string) error {
	err := d.admit(ctx, change(kind, owner),
		[]stmt{st(ownerLocked(kind), kind, owner)},
		func() error { return shiftkey.NoSuchEntity(kind, owner) },
		st(`SELECT EXISTS (SELECT 1 FROM attachments WHERE kind = $1 AND owner = $2 AND policy_arn = $3),
			(SELECT count(*) FROM attachments WHERE kind = $1 AND owner = $2)`, kind, owner, arn),
		shiftkey.MaxAttachedPolicies, shiftkey.AttachedPolicyQuota(kind),
		st(`INSERT INTO attachments (kind, owner, policy_arn) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, kind, owner, arn))
	if isCode(err, foreignKeyViolation) {
		return shiftkey.NoSuchPolicy(arn, true) // deleted meanwhile
	}
	return err
}

// admit runs insert in a transaction after locks, each of which locks one
// owner's row, and count, which reads whether the row is there already and
// how many the owner holds: nothing when the row is there, missing's error
// when an owner's row is not, over when the owner holds max already.
func (d *DB) admit(ctx context.Context, changes []shiftkey.Change, locks []stmt, missing func() error, count stmt, max int, over error, insert stmt) error {
	return d.inTx(ctx, func(tx pgx.Tx, notify func(...shiftkey.Change)) error {
		for _, lock := range locks {
			tag, err := tx.Exec(ctx, lock.sql, lock.args...)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return missing()
			}
		}
		var there bool
		var n int
		if err := tx.QueryRow(ctx, count.sql, count.args...).Scan(&there, &n); err != nil {
			return err
		}
		switch {
		case there:
			return nil
		case n >= max:
			return over
		}
		if _, err := tx.Exec(ctx, insert.sql, insert.args...); err != nil {
			return err
		}
		notify(changes...)
		return nil
	})
}

// DetachPolicy detaches a managed policy.
func (d *DB) DetachPolicy(ctx context.Context, kind shiftkey.EntityKind, owner, arn string) error {
	return d.writeOne(ctx, shiftkey.NoSuchPolicy(arn, false), nil, change(kind, owner),
		`DELETE FROM attachments WHERE kind = $1 AND owner = $2 AND policy_arn = $3`, kind, owner, arn)
}

func prefixed(prefix, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = prefix + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// AttachedPolicies returns the managed policies attached to an entity.
func (d *DB) AttachedPolicies(ctx context.Context, kind shiftkey.EntityKind, owner string) ([]*shiftkey.ManagedPolicy, error) {
	return queryAll(ctx, d.pool, scanOnePolicy, `SELECT `+policyRead+` FROM attachments a
		JOIN managed_policies p ON p.arn = a.policy_arn WHERE a.kind = $1 AND a.owner = $2 ORDER BY p.name`, kind, owner)
}

// PolicyAttachmentCount counts the entities a policy is attached to.
func (d *DB) PolicyAttachmentCount(ctx context.Context, arn string) (int, error) {
	var n int
	err := d.pool.QueryRow(ctx, `SELECT count(*) FROM attachments WHERE policy_arn = $1`, arn).Scan(&n)
	return n, err
}

// PolicyEntities lists the users, groups and roles a policy is attached to.
func (d *DB) PolicyEntities(ctx context.Context, arn string) ([]*shiftkey.Entity, error) {
	return queryAll(ctx, d.pool, scanEntity, `SELECT `+prefixed("e.", entityColumns)+` FROM attachments a
		JOIN entities e ON e.kind = a.kind AND e.name = a.owner WHERE a.policy_arn = $1 ORDER BY e.kind, e.name`, arn)
}

// Groups.

func membership(group, user string) []shiftkey.Change {
	return []shiftkey.Change{{Kind: shiftkey.KindUser, Name: user}, {Kind: shiftkey.KindGroup, Name: group}}
}

// AddUserToGroup makes user a member of group; twice is a no-op. Past
// shiftkey.MaxGroupsPerUser it is LimitExceeded: the user's row is locked
// (FOR UPDATE) before its groups are counted, as in AttachPolicy.
func (d *DB) AddUserToGroup(ctx context.Context, group, user string) error {
	return d.admit(ctx, membership(group, user),
		[]stmt{st(ownerLocked(shiftkey.KindUser), shiftkey.KindUser, user),
			st(`SELECT 1 `+ownerRow(shiftkey.KindGroup), shiftkey.KindGroup, group)},
		func() error {
			return errors.Join(d.existsOr(ctx, shiftkey.KindGroup, group), d.existsOr(ctx, shiftkey.KindUser, user))
		},
		st(`SELECT EXISTS (SELECT 1 FROM group_members WHERE group_name = $1 AND user_name = $2),
			(SELECT count(*) FROM group_members WHERE user_name = $2)`, group, user),
		shiftkey.MaxGroupsPerUser, shiftkey.GroupsPerUserQuota(),
		st(`INSERT INTO group_members (group_name, user_name) VALUES ($1, $2) ON CONFLICT DO NOTHING`, group, user))
}

// RemoveUserFromGroup removes a membership.
func (d *DB) RemoveUserFromGroup(ctx context.Context, group, user string) error {
	return d.writeOne(ctx, shiftkey.NotInGroup(user, group), nil, membership(group, user),
		`DELETE FROM group_members WHERE group_name = $1 AND user_name = $2`, group, user)
}

// GroupsForUser returns the groups a user belongs to.
func (d *DB) GroupsForUser(ctx context.Context, user string) ([]*shiftkey.Entity, error) {
	return queryAll(ctx, d.pool, scanEntity, `SELECT `+prefixed("e.", entityColumns)+` FROM group_members m
		JOIN entities e ON e.kind = 'group' AND e.name = m.group_name WHERE m.user_name = $1 ORDER BY e.name`, user)
}

// GroupMembers returns the user names in a group.
func (d *DB) GroupMembers(ctx context.Context, group string) ([]string, error) {
	return queryAll(ctx, d.pool, scanString, `SELECT user_name FROM group_members WHERE group_name = $1 ORDER BY user_name`, group)
}

// Tags.

// tagUpsert adds tag ($3, $4) to owner ($1, $2), or replaces the value (and
// the key's case) of the tag whose key differs only in case.
func tagUpsert(kind shiftkey.EntityKind) string {
	return `INSERT INTO tags (kind, owner, key, value) VALUES ($1, ` + tagOwner(kind) + `, $3, $4)
	ON CONFLICT (kind, owner, lower(key)) DO UPDATE SET value = excluded.value, key = excluded.key`
}

// TagEntity adds or replaces tags; a replaced tag keeps its place.
// At most shiftkey.MaxTags in all: the owner's row is locked (FOR UPDATE)
// before the tags are written and counted, so concurrent taggers adding
// different keys, on any replica, count one after the other.
func (d *DB) TagEntity(ctx context.Context, kind shiftkey.EntityKind, name string, tags []shiftkey.Tag) error {
	return d.inTx(ctx, func(tx pgx.Tx, notify func(...shiftkey.Change)) error {
		if err := lockOwner(ctx, tx, kind, name); err != nil {
			return err
		}
		for _, t := range tags {
			if _, err := tx.Exec(ctx, tagUpsert(kind), kind, name, t.Key, t.Value); err != nil {
				return err
			}
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM tags WHERE kind = $1 AND owner = `+tagOwner(kind), kind, name).Scan(&n); err != nil {
			return err
		}
		if n > shiftkey.MaxTags {
			return shiftkey.TagQuota(kind)
		}
		notify(change(kind, name)...)
		return nil
	})
}

// UntagEntity removes tags by key; absent keys are ignored.
func (d *DB) UntagEntity(ctx context.Context, kind shiftkey.EntityKind, name string, keys []string) error {
	stmts := make([]stmt, 0, len(keys))
	for _, k := range keys {
		stmts = append(stmts, st(`DELETE FROM tags WHERE kind = $1 AND owner = `+tagOwner(kind)+` AND lower(key) = lower($3::text COLLATE "C")`, kind, name, k))
	}
	_, err := d.write(ctx, change(kind, name), stmts...)
	return err
}

// Tags returns an entity's tags in the order they were first set.
func (d *DB) Tags(ctx context.Context, kind shiftkey.EntityKind, name string) ([]shiftkey.Tag, error) {
	return queryAll(ctx, d.pool, func(r pgx.Row) (t shiftkey.Tag, err error) {
		return t, r.Scan(&t.Key, &t.Value)
	}, `SELECT key, value FROM tags WHERE kind = $1 AND owner = `+tagOwner(kind)+` ORDER BY seq`, kind, name)
}

// Sessions.

// CreateSession stores STS session credentials: the secret sealed, the
// token as its hash.
func (d *DB) CreateSession(ctx context.Context, s *shiftkey.Session) error {
	hash := s.TokenHash
	if s.Token != "" {
		hash = shiftkey.HashSessionToken(s.Token)
	}
	tags := s.Tags
	if tags == nil {
		tags = []shiftkey.Tag{}
	}
	// In one transaction: the key read is the one that seals.
	return d.inTx(ctx, func(tx pgx.Tx, notify func(...shiftkey.Change)) error {
		secret, sealed, err := d.seal(ctx, tx, s.Secret, sessionAAD(s.AccessKeyID))
		if err != nil {
			return err
		}
		if _, err = tx.Exec(ctx, `INSERT INTO sessions (access_key_id, secret, sealed, token_sha256, role_name, role_id, session_name, source_arn,
			source_access_key_id, session_policy, tags, created_at, expires_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)`,
			s.AccessKeyID, secret, sealed, hash, s.RoleName, s.RoleID, s.SessionName, s.SourceARN, nullIfEmpty(s.SourceAccessKeyID),
			s.SessionPolicy, tags, s.CreatedAt, s.ExpiresAt); err != nil {
			return err
		}
		notify(shiftkey.Change{Kind: shiftkey.KindSession, Name: s.AccessKeyID})
		return nil
	})
}

// Session returns the session whose temporary access key is id.
func (d *DB) Session(ctx context.Context, id string) (*shiftkey.Session, error) {
	var s *shiftkey.Session
	err := secretbox.RereadAfterRotation(func() (err error) { s, err = d.session(ctx, id); return err })
	return s, err
}

func (d *DB) session(ctx context.Context, id string) (*shiftkey.Session, error) {
	var s shiftkey.Session
	var stored string
	var sealed bool
	err := d.pool.QueryRow(ctx, `SELECT access_key_id, secret, sealed, token_sha256, role_name, role_id, session_name, source_arn,
		coalesce(source_access_key_id, ''), session_policy, tags, created_at, expires_at FROM sessions WHERE access_key_id = $1`, id).
		Scan(&s.AccessKeyID, &stored, &sealed, &s.TokenHash, &s.RoleName, &s.RoleID, &s.SessionName, &s.SourceARN, &s.SourceAccessKeyID,
			&s.SessionPolicy, &s.Tags, &s.CreatedAt, &s.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, shiftkey.NoSuchSession(id)
	}
	if err != nil {
		return nil, err
	}
	if s.Secret, err = d.unseal(ctx, stored, sealed, sessionAAD(s.AccessKeyID)); err != nil {
		return nil, fmt.Errorf("session %s: %w", s.AccessKeyID, err)
	}
	s.CreatedAt, s.ExpiresAt = utc(s.CreatedAt), utc(s.ExpiresAt)
	return &s, nil
}

// DeleteExpiredSessions removes sessions that expired before t, and the
// records of ended ones, which nothing can use past their expiry.
func (d *DB) DeleteExpiredSessions(ctx context.Context, before time.Time) (int, error) {
	n, err := d.write(ctx, nil, st(`DELETE FROM sessions WHERE expires_at <= $1`, before), st(`DELETE FROM ended_sessions WHERE expires_at <= $1`, before))
	if err != nil {
		return 0, err
	}
	return int(n[0]), nil
}

// RecordDecision appends an authorization decision.
func (d *DB) RecordDecision(ctx context.Context, r *shiftkey.DecisionRecord) error {
	_, err := d.write(ctx, nil, st(`INSERT INTO decisions (request_id, at, principal, action, resource, outcome, explanation)
		VALUES ($1,$2,$3,$4,$5,$6,$7)`, r.RequestID, r.At, r.Principal, r.Action, r.Resource, r.Outcome, r.Explanation))
	return err
}

// Decisions returns the decisions recorded for a request, in order.
func (d *DB) Decisions(ctx context.Context, requestID string) ([]*shiftkey.DecisionRecord, error) {
	return queryAll(ctx, d.pool, func(row pgx.Row) (*shiftkey.DecisionRecord, error) {
		var r shiftkey.DecisionRecord
		err := row.Scan(&r.RequestID, &r.At, &r.Principal, &r.Action, &r.Resource, &r.Outcome, &r.Explanation)
		r.At = utc(r.At)
		return &r, err
	}, `SELECT request_id, at, principal, action, resource, outcome, explanation FROM decisions WHERE request_id = $1 ORDER BY seq`, requestID)
}
