package iamapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/iam"
)

// Declared is the IAM state a config file declares. Reconcile makes the
// store hold exactly this for the identities it names.
type Declared struct {
	AccountID string
	Policies  []DeclaredPolicy
	Groups    []DeclaredGroup
	Users     []DeclaredUser
	Roles     []DeclaredRole
}

// DeclaredPolicy is a customer-managed policy.
type DeclaredPolicy struct {
	Name, Path, Description, Document string
}

// DeclaredGroup is an IAM group. Policies are inline, by name;
// ManagedPolicies name entries of Declared.Policies.
type DeclaredGroup struct {
	Name, Path      string
	Policies        map[string]string
	ManagedPolicies []string
}

// DeclaredUser is an IAM user with its access keys, tags and memberships.
type DeclaredUser struct {
	Name, Path      string
	Tags            map[string]string
	Groups          []string
	AccessKeys      []DeclaredKey
	Policies        map[string]string
	ManagedPolicies []string
	// PermissionsBoundary names an entry of Declared.Policies; "" for
	// none (one set through the API is removed: the file decides).
	PermissionsBoundary string
}

// DeclaredKey is an access key. Status is "Active" or "Inactive"; empty
// creates the key Active and otherwise keeps the status it has, so that a
// key deactivated through the API stays so.
type DeclaredKey struct {
	ID, Secret, Status string
}

// DeclaredRole is an IAM role; MaxSessionDuration 0 is 3600 seconds.
type DeclaredRole struct {
	Name, Path, TrustPolicy string
	MaxSessionDuration      int
	Tags                    map[string]string
	Policies                map[string]string
	ManagedPolicies         []string
	PermissionsBoundary     string // as DeclaredUser's
}

// ReconcileStore is what Reconcile reads and changes.
type ReconcileStore interface {
	shiftkey.IdentityStore
	shiftkey.DeclaredStore
}

// Change is one thing Reconcile changed in the store (or, with Warning,
// left in place although the file no longer declares it). It never holds a
// secret.
type Change struct {
	Change      string              // "key deactivated", "user deleted", …
	Kind        shiftkey.EntityKind // whose: user, group, role or policy
	Name        string              // the identity's name
	AccessKeyID string
	Policy      string // an inline policy's name
	PolicyARN   string
	Group       string
	Tag         string // a tag's key
	Status      string // a key's status when created or replaced
	Warning     bool
}

// Changes are what one Reconcile did, in order.
type Changes []Change

// Attrs are the change as log attributes: change, the identity under its
// kind ("user": "ci"), then what it concerns.
func (c Change) Attrs() []slog.Attr {
	out := []slog.Attr{slog.String("change", c.Change), slog.String(string(c.Kind), c.Name)}
	for _, a := range []struct{ k, v string }{{"access_key_id", c.AccessKeyID}, {"policy", c.Policy}, {"policy_arn", c.PolicyARN}, {"group", c.Group}, {"tag", c.Tag}, {"status", c.Status}} {
		if a.v != "" {
			out = append(out, slog.String(a.k, a.v))
		}
	}
	return out
}

// Log writes a line per change at info ("declared state applied"), one
// per warning at warn, and a summary ("declared state reconciled").
func (cs Changes) Log(ctx context.Context, l *slog.Logger) {
	applied, warnings := 0, 0
	for _, c := range cs {
		if c.Warning {
			warnings++
			l.LogAttrs(ctx, slog.LevelWarn, "declared state left in place", c.Attrs()...)
			continue
		}
		applied++
		l.LogAttrs(ctx, slog.LevelInfo, "declared state applied", c.Attrs()...)
	}
	l.LogAttrs(ctx, slog.LevelInfo, "declared state reconciled", slog.Int("changes", applied), slog.Int("warnings", warnings))
}

// Reconcile makes the store hold what d declares. For declared identities
// the file is authoritative: their keys, tags, inline policies, managed
// policy attachments and group memberships become exactly the declared
// ones, and identities declared before but no longer in d are deleted.
// Identities that d does not name and that were never declared (created
// through the IAM API) are left alone. A declared key is changed in place
// (status) or, when its secret changed, replaced; it is never recreated
// otherwise.
func Reconcile(ctx context.Context, st ReconcileStore, d Declared) (Changes, error) {
	r := &reconciler{ctx: ctx, st: st, d: d, now: time.Now().UTC(), policyARN: map[string]string{}, marked: map[string]bool{}, markedAs: map[string]string{}}
	for _, p := range d.Policies {
		r.policyARN[strings.ToLower(p.Name)] = r.arn("policy", p.Path, p.Name)
	}
	steps := []func() error{r.removeIdentities, r.policies, r.groups, r.users, r.roles, r.removePolicies, r.forgetKeys}
	for _, step := range steps {
		if err := step(); err != nil {
			return r.changes, err
		}
	}
	return r.changes, nil
}

type reconciler struct {
	ctx       context.Context
	st        ReconcileStore
	d         Declared
	now       time.Time
	policyARN map[string]string // lower-cased declared policy name → ARN
	marked    map[string]bool   // ids of the entities declared before this run, and in it so far
	// markedAs are the names the store's marks give ids (policies: ARNs),
	// so that a reload that changes nothing writes nothing: serve holds
	// its API calls off while one runs.
	markedAs map[string]string
	// keyMarks are the ids of the declared keys an earlier run made or
	// found: one of them missing now was deleted through the IAM API.
	keyMarks map[string]bool
	changes  Changes
}

func (r *reconciler) note(c Change) { r.changes = append(r.changes, c) }

func pathOr(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

func (r *reconciler) arn(kind, path, name string) string {
	return fmt.Sprintf("arn:aws:iam::%s:%s%s%s", r.d.AccountID, kind, pathOr(path), name)
}

// declaredNames are the lower-cased names d gives identities of kind.
func (r *reconciler) declaredNames(kind shiftkey.EntityKind) map[string]bool {
	out := map[string]bool{}
	switch kind {
	case shiftkey.KindUser:
		for _, u := range r.d.Users {
			out[strings.ToLower(u.Name)] = true
		}
	case shiftkey.KindGroup:
		for _, g := range r.d.Groups {
			out[strings.ToLower(g.Name)] = true
		}
	case shiftkey.KindRole:
		for _, ro := range r.d.Roles {
			out[strings.ToLower(ro.Name)] = true
		}
	}
	return out
}

// removeIdentities deletes the users, roles and groups declared before and
// no longer in d, with their keys, policies, tags and memberships. It runs
// first, so that a key moved to another user in the file is free.
func (r *reconciler) removeIdentities() error {
	for _, kind := range []shiftkey.EntityKind{shiftkey.KindUser, shiftkey.KindRole, shiftkey.KindGroup} {
		refs, err := r.st.DeclaredRefs(r.ctx, kind)
		if err != nil {
			return err
		}
		names := r.declaredNames(kind)
		for _, ref := range refs {
			r.marked[ref.ID] = true
			r.markedAs[ref.ID] = ref.Name
			e, err := r.st.Entity(r.ctx, kind, ref.Name)
			if gone := shiftkey.ErrorCode(err) == shiftkey.CodeNoSuchEntity; (gone || err == nil && e.ID != ref.ID) && kind != shiftkey.KindRole {
				// Renamed through the API (UpdateUser, UpdateGroup)?
				moved, ferr := r.byID(kind, ref.ID)
				switch {
				case ferr != nil:
					return ferr
				case moved == nil: // deleted: handled below
				case gone && names[strings.ToLower(ref.Name)]:
					// The file's name is free: the entity takes it back.
					if err := r.restoreName(moved, r.declared(kind, ref.Name)); err != nil {
						return err
					}
					continue
				case names[strings.ToLower(ref.Name)]:
					// The file's name is another entity's now: the
					// declared one cannot take it back, and deleting it
					// (its keys, memberships) to adopt the other in its
					// place would hand the file's policies, groups and
					// trust to whoever took the name. The operator
					// decides.
					return fmt.Errorf("%s %s: declared as %s, renamed %s through the IAM API, and the name is now another %s's (%s): rename or delete one of them",
						kind, ref.Name, ref.ID, moved.Name, kind, e.ID)
				default:
					// Kept when the file now declares the API's name,
					// else deleted as no longer declared.
					e, err = moved, nil
				}
			}
			switch {
			case shiftkey.ErrorCode(err) == shiftkey.CodeNoSuchEntity || err == nil && e.ID != ref.ID:
				// Deleted (and maybe recreated) through the API: not ours.
				if err := r.st.UnmarkDeclared(r.ctx, kind, ref.ID); err != nil {
					return err
				}
				continue
			case err != nil:
				return err
			case names[strings.ToLower(e.Name)]:
				continue
			}
			if kind == shiftkey.KindUser {
				// Its keys go with it, deleted by us: a key the file now
				// declares for another user (the user renamed in the file)
				// is then a new key, not one deleted through the IAM API.
				keys, err := r.st.AccessKeys(r.ctx, e.Name)
				if err != nil {
					return err
				}
				for _, k := range keys {
					if err := r.st.UnmarkDeclared(r.ctx, shiftkey.KindAccessKey, k.ID); err != nil {
						return err
					}
				}
			}
			if err := r.st.DeleteEntity(r.ctx, kind, e.Name); err != nil {
				return fmt.Errorf("%s %s: %w", kind, e.Name, err)
			}
			if err := r.st.UnmarkDeclared(r.ctx, kind, ref.ID); err != nil {
				return err
			}
			r.note(Change{Change: string(kind) + " deleted", Kind: kind, Name: e.Name})
		}
	}
	return nil
}

// policies creates or updates the declared managed policies.
func (r *reconciler) policies() error {
	refs, err := r.st.DeclaredRefs(r.ctx, shiftkey.KindPolicy)
	if err != nil {
		return err
	}
	for _, ref := range refs {
		r.markedAs[ref.ID] = ref.Name
	}
	for _, p := range r.d.Policies {
		arn := r.policyARN[strings.ToLower(p.Name)]
		got, err := r.st.ManagedPolicy(r.ctx, arn)
		switch {
		case shiftkey.ErrorCode(err) == shiftkey.CodeNoSuchEntity:
			got = &shiftkey.ManagedPolicy{ARN: arn, Name: p.Name, ID: shiftkey.NewID("ANPA"), Path: pathOr(p.Path),
				Description: p.Description, Document: p.Document, CreatedAt: r.now, UpdatedAt: r.now}
			if err := r.st.CreateManagedPolicy(r.ctx, got); err != nil {
				return fmt.Errorf("policy %s: %w", p.Name, err)
			}
			r.note(Change{Change: "policy created", Kind: shiftkey.KindPolicy, Name: p.Name, PolicyARN: arn})
		case err != nil:
			return fmt.Errorf("policy %s: %w", p.Name, err)
		default:
			// The file's document is the policy's one version: versions
			// made through the API (CreatePolicyVersion) go.
			vs, err := r.st.PolicyVersions(r.ctx, arn)
			if err != nil {
				return fmt.Errorf("policy %s: %w", p.Name, err)
			}
			if got.Document == p.Document && got.Description == p.Description && len(vs) == 1 {
				break
			}
			if got.Document != p.Document {
				got.UpdatedAt = r.now
			}
			got.Document, got.Description = p.Document, p.Description
			if err := r.st.UpdateManagedPolicy(r.ctx, got); err != nil {
				return fmt.Errorf("policy %s: %w", p.Name, err)
			}
			r.note(Change{Change: "policy updated", Kind: shiftkey.KindPolicy, Name: p.Name, PolicyARN: arn})
		}
		// The file declares no tags for policies and is authoritative for
		// a declared policy as for a user or role: tags set through the
		// API (TagPolicy) go.
		if err := r.tagsOf(shiftkey.KindPolicy, arn, Change{Kind: shiftkey.KindPolicy, Name: p.Name, PolicyARN: arn}, nil); err != nil {
			return fmt.Errorf("policy %s: %w", p.Name, err)
		}
		if err := r.mark(shiftkey.DeclaredRef{Kind: shiftkey.KindPolicy, ID: got.ID, Name: arn}); err != nil {
			return err
		}
	}
	return nil
}

// mark records ref as declared, unless the store has that mark already.
func (r *reconciler) mark(ref shiftkey.DeclaredRef) error {
	if name, ok := r.markedAs[ref.ID]; ok && name == ref.Name {
		return nil
	}
	if err := r.st.MarkDeclared(r.ctx, ref); err != nil {
		return err
	}
	r.markedAs[ref.ID] = ref.Name
	return nil
}

// byID is the entity of kind whose id is id, nil when there is none.
func (r *reconciler) byID(kind shiftkey.EntityKind, id string) (*shiftkey.Entity, error) {
	all, err := r.st.Entities(r.ctx, kind, "/")
	if err != nil {
		return nil, err
	}
	for _, e := range all {
		if e.ID == id {
			return e, nil
		}
	}
	return nil, nil
}

// declared is the name (as the file spells it) and path d declares for
// the user or group called name in any case.
func (r *reconciler) declared(kind shiftkey.EntityKind, name string) *shiftkey.Entity {
	var n, p string
	switch kind {
	case shiftkey.KindUser:
		for _, u := range r.d.Users {
			if strings.EqualFold(u.Name, name) {
				n, p = u.Name, u.Path
			}
		}
	case shiftkey.KindGroup:
		for _, g := range r.d.Groups {
			if strings.EqualFold(g.Name, name) {
				n, p = g.Name, g.Path
			}
		}
	}
	return &shiftkey.Entity{Kind: kind, Name: n, Path: pathOr(p), ARN: r.arn(string(kind), p, n)}
}

// restoreName gives a declared user or group the name and path want
// declares, which a rename through the IAM API (UpdateUser, UpdateGroup)
// changed: the file is authoritative for them as for a declared role's
// settings (UpdateRole). It stays the same entity, with its keys,
// memberships and policies.
func (r *reconciler) restoreName(got, want *shiftkey.Entity) error {
	if strings.EqualFold(got.Name, want.Name) {
		// The name in another case is the same name (an adopted "CI"
		// keeps its spelling for the file's "ci").
		w := *want
		w.Name, w.ARN = got.Name, r.arn(string(got.Kind), want.Path, got.Name)
		want = &w
	}
	if got.Name == want.Name && got.Path == want.Path {
		return nil
	}
	if err := r.st.RenameEntity(r.ctx, got.Kind, got, want); err != nil {
		return fmt.Errorf("%s %s: %w", got.Kind, got.Name, err)
	}
	r.note(Change{Change: string(got.Kind) + " renamed", Kind: got.Kind, Name: want.Name})
	got.Name, got.Path, got.ARN = want.Name, want.Path, want.ARN
	return nil
}

// boundary makes the permissions boundary of e, stored now, the one the
// file declares (name, an entry of Declared.Policies, created by the
// policies step before), or none.
func (r *reconciler) boundary(e *shiftkey.Entity, stored, name string) error {
	want := ""
	if name != "" {
		arn, ok := r.policyARN[strings.ToLower(name)]
		if !ok {
			return fmt.Errorf("permissions boundary %s is not declared", name)
		}
		want = arn
	}
	if stored == want {
		return nil
	}
	if err := r.st.SetPermissionsBoundary(r.ctx, e.Kind, e.Name, want); err != nil {
		return err
	}
	change := "permissions boundary set"
	if want == "" {
		change = "permissions boundary removed"
	}
	r.note(Change{Change: change, Kind: e.Kind, Name: e.Name, PolicyARN: want})
	return nil
}

// removePolicies deletes the managed policies declared before and no
// longer in d. One still attached to an identity the file does not
// declare, or its permissions boundary, is kept, with a warning, as IAM's
// DeletePolicy would refuse it.
func (r *reconciler) removePolicies() error {
	refs, err := r.st.DeclaredRefs(r.ctx, shiftkey.KindPolicy)
	if err != nil {
		return err
	}
	declared := map[string]bool{}
	for _, arn := range r.policyARN {
		declared[arn] = true
	}
	for _, ref := range refs {
		p, err := r.st.ManagedPolicy(r.ctx, ref.Name)
		switch {
		case shiftkey.ErrorCode(err) == shiftkey.CodeNoSuchEntity || err == nil && p.ID != ref.ID:
			if err := r.st.UnmarkDeclared(r.ctx, shiftkey.KindPolicy, ref.ID); err != nil {
				return err
			}
			continue
		case err != nil:
			return err
		case declared[p.ARN]:
			continue
		}
		n, err := r.st.PolicyAttachmentCount(r.ctx, p.ARN)
		if err != nil {
			return err
		}
		if n > 0 {
			r.note(Change{Change: "policy kept: attached to identities the file does not declare", Kind: shiftkey.KindPolicy, Name: p.Name, PolicyARN: p.ARN, Warning: true})
			continue
		}
		// Likewise a boundary set through the API (the file declares none).
		if bounded, err := r.st.BoundaryEntities(r.ctx, p.ARN); err != nil {
			return err
		} else if len(bounded) > 0 {
			r.note(Change{Change: "policy kept: a permissions boundary of identities the file does not declare", Kind: shiftkey.KindPolicy, Name: p.Name, PolicyARN: p.ARN, Warning: true})
			continue
		}
		if err := r.st.DeleteManagedPolicy(r.ctx, p.ARN); err != nil {
			return fmt.Errorf("policy %s: %w", p.Name, err)
		}
		if err := r.st.UnmarkDeclared(r.ctx, shiftkey.KindPolicy, ref.ID); err != nil {
			return err
		}
		r.note(Change{Change: "policy deleted", Kind: shiftkey.KindPolicy, Name: p.Name, PolicyARN: p.ARN})
	}
	return nil
}

// ensure returns the stored entity called e.Name, creating e when there is
// none, and marks it declared. An existing entity that was not declared
// (created through the API, or by a version that kept no marks) is adopted.
func (r *reconciler) ensure(e *shiftkey.Entity) (*shiftkey.Entity, error) {
	got, err := r.st.Entity(r.ctx, e.Kind, e.Name)
	switch {
	case shiftkey.ErrorCode(err) == shiftkey.CodeNoSuchEntity:
		if err := r.st.CreateEntity(r.ctx, e); err != nil {
			return nil, err
		}
		got = e
		r.note(Change{Change: string(e.Kind) + " created", Kind: e.Kind, Name: e.Name})
	case err != nil:
		return nil, err
	case !r.marked[got.ID]:
		r.note(Change{Change: string(e.Kind) + " adopted", Kind: e.Kind, Name: got.Name})
	}
	if e.Kind != shiftkey.KindRole {
		// The declared path, which an API call (UpdateUser, UpdateGroup)
		// or a file edit may have changed.
		if err := r.restoreName(got, e); err != nil {
			return nil, err
		}
	}
	// Declared from here on, in this run too: roles are ensured twice
	// (roles), and the second time is neither a creation nor an adoption.
	r.marked[got.ID] = true
	return got, r.mark(shiftkey.DeclaredRef{Kind: e.Kind, ID: got.ID, Name: got.Name})
}

func (r *reconciler) groups() error {
	for _, g := range r.d.Groups {
		e, err := r.ensure(&shiftkey.Entity{Kind: shiftkey.KindGroup, Name: g.Name, ID: shiftkey.NewID("AGPA"), Path: pathOr(g.Path),
			ARN: r.arn("group", g.Path, g.Name), CreatedAt: r.now})
		if err == nil {
			err = r.policySet(e, g.Policies, g.ManagedPolicies)
		}
		if err != nil {
			return fmt.Errorf("group %s: %w", g.Name, err)
		}
	}
	return nil
}

// users first makes every declared user exist and drops the keys the file
// no longer gives it, then adds and updates keys: a key moved from one
// declared user to another is free by the time it is added.
func (r *reconciler) users() error {
	refs, err := r.st.DeclaredRefs(r.ctx, shiftkey.KindAccessKey)
	if err != nil {
		return err
	}
	r.keyMarks = map[string]bool{}
	for _, ref := range refs {
		r.keyMarks[ref.ID] = true
		r.markedAs[ref.ID] = ref.Name
	}
	entities := make([]*shiftkey.Entity, len(r.d.Users))
	for i, u := range r.d.Users {
		e, err := r.ensure(&shiftkey.Entity{Kind: shiftkey.KindUser, Name: u.Name, ID: shiftkey.NewID("AIDA"), Path: pathOr(u.Path),
			ARN: r.arn("user", u.Path, u.Name), CreatedAt: r.now})
		if err == nil {
			err = r.pruneKeys(e, u.AccessKeys)
		}
		if err != nil {
			return fmt.Errorf("user %s: %w", u.Name, err)
		}
		entities[i] = e
	}
	for i, u := range r.d.Users {
		e := entities[i]
		err := r.boundary(e, e.PermissionsBoundary, u.PermissionsBoundary)
		if err == nil {
			err = r.keys(e, u.AccessKeys)
		}
		if err == nil {
			err = r.tags(e, u.Tags)
		}
		if err == nil {
			err = r.memberships(e, u.Groups)
		}
		if err == nil {
			err = r.policySet(e, u.Policies, u.ManagedPolicies)
		}
		if err != nil {
			return fmt.Errorf("user %s: %w", u.Name, err)
		}
	}
	return nil
}

func (r *reconciler) pruneKeys(e *shiftkey.Entity, want []DeclaredKey) error {
	keep := map[string]bool{}
	for _, k := range want {
		keep[k.ID] = true
	}
	have, err := r.st.AccessKeys(r.ctx, e.Name)
	if err != nil {
		return err
	}
	for _, k := range have {
		if keep[k.ID] {
			continue
		}
		if err := r.st.DeleteAccessKey(r.ctx, k.ID); err != nil {
			return err
		}
		if err := r.unmarkKey(k.ID); err != nil {
			return err
		}
		r.note(Change{Change: "key deleted", Kind: shiftkey.KindUser, Name: e.Name, AccessKeyID: k.ID})
	}
	return nil
}

// unmarkKey forgets that key id was declared: the file dropped it (or
// moved it, and the reconciler deleted it), not an API caller.
func (r *reconciler) unmarkKey(id string) error {
	if !r.keyMarks[id] {
		return nil
	}
	if err := r.st.UnmarkDeclared(r.ctx, shiftkey.KindAccessKey, id); err != nil {
		return err
	}
	delete(r.keyMarks, id)
	delete(r.markedAs, id)
	return nil
}

// forgetKeys forgets the marks of keys the file no longer declares (their
// users removed from it, or deleted through the API and dropped from the
// file since).
func (r *reconciler) forgetKeys() error {
	declared := map[string]bool{}
	for _, u := range r.d.Users {
		for _, k := range u.AccessKeys {
			declared[k.ID] = true
		}
	}
	for id := range r.keyMarks {
		if !declared[id] {
			if err := r.unmarkKey(id); err != nil {
				return err
			}
		}
	}
	return nil
}

// keys creates the declared keys that are missing, replaces those whose
// secret changed and sets the status the file declares. A key missing
// although an earlier run made it was deleted through the IAM API, most
// likely to stop it: it is made again, so the store holds what the file
// declares, but Inactive unless the file says Active, as a key
// deactivated through the API stays so.
func (r *reconciler) keys(e *shiftkey.Entity, want []DeclaredKey) error {
	for _, k := range want {
		got, err := r.st.AccessKey(r.ctx, k.ID)
		switch {
		case shiftkey.ErrorCode(err) == shiftkey.CodeNoSuchEntity && r.keyMarks[k.ID] && k.Status == "":
			err = r.createKey(e, k, "Inactive", "key recreated Inactive: deleted through the IAM API")
		case shiftkey.ErrorCode(err) == shiftkey.CodeNoSuchEntity:
			err = r.createKey(e, k, "Active", "key created")
		case err != nil:
		case !strings.EqualFold(got.UserName, e.Name):
			err = fmt.Errorf("access key %s belongs to %s", k.ID, got.UserName)
		case got.Secret != k.Secret:
			// Rotated in the environment. The store has no secret update
			// (it keeps secrets as it chooses), so the key is replaced.
			if err = r.st.DeleteAccessKey(r.ctx, k.ID); err == nil {
				err = r.createKey(e, k, got.Status, "key secret replaced")
			}
		case k.Status != "" && got.Status != k.Status:
			if err = r.st.UpdateAccessKey(r.ctx, k.ID, k.Status); err == nil {
				r.note(Change{Change: statusChange(k.Status), Kind: shiftkey.KindUser, Name: e.Name, AccessKeyID: k.ID})
			}
		}
		if err == nil {
			err = r.mark(shiftkey.DeclaredRef{Kind: shiftkey.KindAccessKey, ID: k.ID, Name: e.Name})
		}
		if err != nil {
			return err
		}
		r.keyMarks[k.ID] = true
	}
	return nil
}

// createKey stores k with its declared status, else status.
func (r *reconciler) createKey(e *shiftkey.Entity, k DeclaredKey, status, change string) error {
	if k.Status != "" {
		status = k.Status
	}
	if err := r.st.CreateAccessKey(r.ctx, &shiftkey.AccessKey{ID: k.ID, Secret: k.Secret, UserName: e.Name, Status: status, CreatedAt: r.now}); err != nil {
		return err
	}
	r.note(Change{Change: change, Kind: shiftkey.KindUser, Name: e.Name, AccessKeyID: k.ID, Status: status})
	return nil
}

func statusChange(status string) string {
	if status == "Inactive" {
		return "key deactivated"
	}
	return "key activated"
}

// tags makes e's tags exactly want.
func (r *reconciler) tags(e *shiftkey.Entity, want map[string]string) error {
	return r.tagsOf(e.Kind, e.Name, Change{Kind: e.Kind, Name: e.Name}, want)
}

// tagsOf makes the tags of the owner (kind, name: a user's or role's name,
// a managed policy's ARN) exactly want, noting each change as about.
func (r *reconciler) tagsOf(kind shiftkey.EntityKind, name string, about Change, want map[string]string) error {
	note := func(what, key string) {
		c := about
		c.Change, c.Tag = what, key
		r.note(c)
	}
	have, err := r.st.Tags(r.ctx, kind, name)
	if err != nil {
		return err
	}
	wantLower := map[string]bool{}
	for k := range want {
		wantLower[strings.ToLower(k)] = true
	}
	current := map[string]shiftkey.Tag{}
	var drop []string
	for _, t := range have {
		current[strings.ToLower(t.Key)] = t
		if !wantLower[strings.ToLower(t.Key)] {
			drop = append(drop, t.Key)
		}
	}
	if len(drop) > 0 {
		if err := r.st.UntagEntity(r.ctx, kind, name, drop); err != nil {
			return err
		}
		for _, k := range drop {
			note("tag removed", k)
		}
	}
	var set []shiftkey.Tag
	for _, k := range sortedKeys(want) {
		if t, ok := current[strings.ToLower(k)]; !ok || t.Key != k || t.Value != want[k] {
			set = append(set, shiftkey.Tag{Key: k, Value: want[k]})
		}
	}
	if len(set) == 0 {
		return nil
	}
	if err := r.st.TagEntity(r.ctx, kind, name, set); err != nil {
		return err
	}
	for _, t := range set {
		note("tag set", t.Key)
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// memberships makes the user's groups exactly want.
func (r *reconciler) memberships(e *shiftkey.Entity, want []string) error {
	have, err := r.st.GroupsForUser(r.ctx, e.Name)
	if err != nil {
		return err
	}
	in := map[string]bool{}
	for _, g := range have {
		in[strings.ToLower(g.Name)] = true
	}
	wanted := map[string]bool{}
	for _, g := range want {
		wanted[strings.ToLower(g)] = true
		if in[strings.ToLower(g)] {
			continue
		}
		if err := r.st.AddUserToGroup(r.ctx, g, e.Name); err != nil {
			return err
		}
		in[strings.ToLower(g)] = true
		r.note(Change{Change: "added to group", Kind: shiftkey.KindUser, Name: e.Name, Group: g})
	}
	for _, g := range have {
		if wanted[strings.ToLower(g.Name)] {
			continue
		}
		if err := r.st.RemoveUserFromGroup(r.ctx, g.Name, e.Name); err != nil {
			return err
		}
		r.note(Change{Change: "removed from group", Kind: shiftkey.KindUser, Name: e.Name, Group: g.Name})
	}
	return nil
}

// policySet makes e's inline policies and managed-policy attachments
// exactly the declared ones.
func (r *reconciler) policySet(e *shiftkey.Entity, inline map[string]string, managed []string) error {
	if err := r.inline(e, inline); err != nil {
		return err
	}
	return r.attachments(e, managed)
}

func (r *reconciler) inline(e *shiftkey.Entity, want map[string]string) error {
	have, err := r.st.InlinePolicies(r.ctx, e.Kind, e.Name)
	if err != nil {
		return err
	}
	current := map[string]string{}
	wantLower := map[string]bool{}
	for k := range want {
		wantLower[strings.ToLower(k)] = true
	}
	for _, p := range have {
		current[strings.ToLower(p.Name)] = p.Document
		if wantLower[strings.ToLower(p.Name)] {
			continue
		}
		if err := r.st.DeleteInlinePolicy(r.ctx, e.Kind, e.Name, p.Name); err != nil {
			return err
		}
		r.note(Change{Change: "inline policy deleted", Kind: e.Kind, Name: e.Name, Policy: p.Name})
	}
	for _, name := range sortedKeys(want) {
		doc, ok := current[strings.ToLower(name)]
		if ok && doc == want[name] {
			continue
		}
		if err := r.st.PutInlinePolicy(r.ctx, e.Kind, e.Name, shiftkey.PolicyDocument{Name: name, Document: want[name]}); err != nil {
			return err
		}
		change := "inline policy created"
		if ok {
			change = "inline policy updated"
		}
		r.note(Change{Change: change, Kind: e.Kind, Name: e.Name, Policy: name})
	}
	return nil
}

func (r *reconciler) attachments(e *shiftkey.Entity, managed []string) error {
	want := map[string]bool{}
	var order []string
	for _, name := range managed {
		arn, ok := r.policyARN[strings.ToLower(name)]
		if !ok {
			return fmt.Errorf("managed policy %s is not declared", name)
		}
		if !want[arn] {
			want[arn] = true
			order = append(order, arn)
		}
	}
	have, err := r.st.AttachedPolicies(r.ctx, e.Kind, e.Name)
	if err != nil {
		return err
	}
	attached := map[string]bool{}
	for _, p := range have {
		attached[p.ARN] = true
		if want[p.ARN] {
			continue
		}
		if err := r.st.DetachPolicy(r.ctx, e.Kind, e.Name, p.ARN); err != nil {
			return err
		}
		r.note(Change{Change: "policy detached", Kind: e.Kind, Name: e.Name, PolicyARN: p.ARN})
	}
	for _, arn := range order {
		if attached[arn] {
			continue
		}
		if err := r.st.AttachPolicy(r.ctx, e.Kind, e.Name, arn); err != nil {
			return err
		}
		r.note(Change{Change: "policy attached", Kind: e.Kind, Name: e.Name, PolicyARN: arn})
	}
	return nil
}

func (r *reconciler) roles() error {
	// A trust policy binds the roles it names (BindTrustPrincipals), and
	// may name one declared after it: when the first pass created a role,
	// a second binds the policies that name it. A reload that creates no
	// role (the usual one) makes one pass.
	for pass := range 2 {
		before := len(r.changes)
		for _, ro := range r.d.Roles {
			if err := r.role(ro); err != nil {
				return fmt.Errorf("role %s: %w", ro.Name, err)
			}
		}
		if pass == 0 && !slices.ContainsFunc(r.changes[before:], func(c Change) bool { return c.Change == "role created" }) {
			return nil
		}
	}
	return nil
}

func (r *reconciler) role(ro DeclaredRole) error {
	maxSession := ro.MaxSessionDuration
	if maxSession == 0 {
		maxSession = 3600
	}
	want := &shiftkey.Entity{Kind: shiftkey.KindRole, Name: ro.Name, ID: shiftkey.NewID("AROA"), Path: pathOr(ro.Path), ARN: r.arn("role", ro.Path, ro.Name),
		AssumeRolePolicy: ro.TrustPolicy, MaxSessionDuration: maxSession, CreatedAt: r.now}
	trust, err := ParseTrustPolicy(ro.TrustPolicy)
	if err != nil {
		return err
	}
	fresh, err := trustBindings(r.ctx, r.st, trust, want)
	if err != nil {
		return err
	}
	if want.TrustPrincipalIDs, err = r.keepBindings(ro, trust, fresh); err != nil {
		return err
	}
	e, err := r.ensure(want)
	if err != nil {
		return err
	}
	if err := r.boundary(e, e.PermissionsBoundary, ro.PermissionsBoundary); err != nil {
		return err
	}
	if e.AssumeRolePolicy != ro.TrustPolicy || e.MaxSessionDuration != maxSession || e.TrustPrincipalIDs != want.TrustPrincipalIDs {
		// One write: the role keeps its id, policies and tags throughout
		// (deleted and recreated, it would get its policies back one at a
		// time, an Allow before a Deny).
		want.ID, want.CreatedAt, want.Name, want.Path, want.ARN, want.Description = e.ID, e.CreatedAt, e.Name, e.Path, e.ARN, e.Description
		if err := r.st.UpdateRole(r.ctx, want, shiftkey.RoleTrust|shiftkey.RoleMaxSession); err != nil {
			return err
		}
		r.note(Change{Change: "role updated", Kind: shiftkey.KindRole, Name: e.Name})
		e = want
	}
	if err := r.tags(e, ro.Tags); err != nil {
		return err
	}
	return r.policySet(e, ro.Policies, ro.ManagedPolicies)
}

// keepBindings returns the bindings of declared role ro's trust policy:
// fresh (bound now) when the policy is saved, that is when the role is new
// or the file changed the policy. When the stored role has the file's
// policy, a reload saves nothing, as in AWS: the principals outside the
// file keep the entities they were bound to (or none), so that an API
// caller who creates or recreates a user of a trusted name gains no trust
// at the next reload or restart. The file's own users and roles are bound
// afresh: the file recreates them.
func (r *reconciler) keepBindings(ro DeclaredRole, trust *iam.TrustPolicy, fresh map[string]string) (string, error) {
	stored, err := r.st.Entity(r.ctx, shiftkey.KindRole, ro.Name)
	switch {
	case err != nil && shiftkey.ErrorCode(err) != shiftkey.CodeNoSuchEntity:
		return "", err
	case err == nil && stored.AssumeRolePolicy == ro.TrustPolicy && stored.TrustPrincipalIDs != "":
		var was map[string]string
		if err := json.Unmarshal([]byte(stored.TrustPrincipalIDs), &was); err != nil {
			return "", fmt.Errorf("role %s: its principals' ids: %w", ro.Name, err)
		}
		ids := map[string]string{}
		for _, p := range trust.BindablePrincipals() {
			p = strings.ToLower(p)
			from := was
			if r.declaredPrincipal(p) {
				from = fresh
			}
			if id, ok := from[p]; ok {
				ids[p] = id
			}
		}
		fresh = ids
	}
	b, err := json.Marshal(fresh)
	return string(b), err
}

// declaredPrincipal reports whether lower-case ARN p names a user or role
// of the file.
func (r *reconciler) declaredPrincipal(p string) bool {
	for _, u := range r.d.Users {
		if p == strings.ToLower(r.arn("user", u.Path, u.Name)) {
			return true
		}
	}
	for _, ro := range r.d.Roles {
		if p == strings.ToLower(r.arn("role", ro.Path, ro.Name)) {
			return true
		}
	}
	return false
}
