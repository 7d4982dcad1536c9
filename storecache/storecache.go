// Package storecache serves what every API call reads and what rarely
// changes (access keys, sessions, IAM identities with their tags and
// policies, clusters, workgroups, namespaces, custom domains) from memory,
// over any shiftkey.Store.
//
// Entries are dropped by every write made through the cache, and, when the
// wrapped store is a shiftkey.ChangeSource, by every change other
// processes report; when it is also a shiftkey.CurrentSource, entries
// answer only while it is current (else every call reads the store). Writes that bypass both (another process writing a
// SQLite file, a store written before the cache existed) must be followed
// by Invalidate, or be a revocation of a shiftkey.OutsideRevocations
// store, which the cache hears of before it answers a session from
// memory. Only successful reads are cached: a missing key costs a
// store read each time, as before.
package storecache

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/shiftkey/shiftkey"
)

// maxEntries bounds the memory of one group of entries; a full group is
// cleared, which is no worse than no cache.
const maxEntries = 100_000

// group is a family of entries dropped together.
type group int

const (
	gKeys       group = iota // access keys by id
	gSessions                // sessions by access key id
	gIAM                     // entities, their inline and attached policies, groups, managed policies
	gTags                    // tags by kind and name (IAM users and roles, managed policies by ARN, clusters)
	gClusters                // clusters by identifier
	gServerless              // workgroups and namespaces by name
	gDomains                 // custom domains by name
	nGroups
)

// Store is a caching shiftkey.Store. Methods it does not define go to the
// wrapped store unchanged: reads it does not cache and writes that change
// nothing it caches (credentials, salts, audit records, grants).
type Store struct {
	shiftkey.Store

	mu sync.Mutex
	// gen counts invalidations. A reader notes it before reading the store
	// and caches its result only if no invalidation happened meanwhile, so
	// a read that raced with a write is never cached stale.
	gen     uint64
	entries [nGroups]map[string]any
	// declaring counts Declaring runs under way: nothing is cached then.
	declaring int

	// current tells whether the ChangeSource has delivered what other
	// processes wrote (nil: no other writer, or a source that cannot
	// tell). While it has not, entries answer nothing: a replica whose
	// feed hangs or is lost must not keep honouring a key, policy or
	// membership that another replica has since revoked.
	current func() bool
	// catchUp, when the wrapped store is written by other processes
	// without a feed, brings gSessions up to date with the sessions they
	// ended (shiftkey.OutsideRevocations).
	catchUp func()

	afterRead func() // test hook: runs between the store read and the put
}

// New wraps st. When st is a shiftkey.ChangeSource, the cache subscribes to
// it and drops what other processes change.
func New(st shiftkey.Store) *Store {
	c := &Store{Store: st}
	for i := range c.entries {
		c.entries[i] = map[string]any{}
	}
	if src, ok := st.(shiftkey.ChangeSource); ok {
		src.Subscribe(c.Invalidate)
	}
	if src, ok := st.(shiftkey.CurrentSource); ok {
		c.current = src.Current
	}
	if src, ok := st.(shiftkey.OutsideRevocations); ok {
		src.OnRevoked(func() { c.Invalidate(shiftkey.Change{Kind: shiftkey.KindSession}) })
		c.catchUp = src.CatchUp
	}
	return c
}

// Invalidate drops what ch may have changed; the zero Change drops
// everything. Call it after the write it reports has committed.
func (c *Store) Invalidate(ch shiftkey.Change) {
	if ch.Kind == shiftkey.KindCredential || ch.Kind == shiftkey.KindGroupCut {
		// Not cached here (the stores cache logins themselves; group cuts
		// are for the gateways), so nothing to drop and no read in flight
		// to keep from being cached.
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	drop := func(g group, name string) {
		if name == "" {
			clear(c.entries[g])
		} else {
			delete(c.entries[g], name)
		}
	}
	switch ch.Kind {
	case shiftkey.KindAccessKey:
		drop(gKeys, ch.Name)
	case shiftkey.KindSession:
		drop(gSessions, ch.Name)
	case shiftkey.KindUser, shiftkey.KindGroup, shiftkey.KindRole, shiftkey.KindPolicy:
		// Identities, memberships and attachments refer to each other, and
		// deleting a user deletes its keys: drop every IAM entry. IAM
		// writes are rare; issues never make one.
		clear(c.entries[gIAM])
		clear(c.entries[gKeys])
		clear(c.entries[gTags])
	case shiftkey.KindCluster:
		drop(gClusters, ch.Name)
		clear(c.entries[gTags])
	case shiftkey.KindWorkgroup, shiftkey.KindNamespace:
		clear(c.entries[gServerless])
		clear(c.entries[gTags])
	case shiftkey.KindDomain:
		// Every entry: the stores match a domain in any case (PostgreSQL's
		// nondeterministic collation, canonical equivalents too), and an
		// entry is keyed by the TLS server name as the client spelled it,
		// which a change (in lower case) need not match.
		clear(c.entries[gDomains])
	default: // the zero Change, or a kind this cache does not know
		for i := range c.entries {
			clear(c.entries[i])
		}
	}
}

// get returns the cached value of (g, key) and, on a miss, the generation
// to pass to put.
func (c *Store) get(g group, key string) (any, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.entries[g][key]
	return v, ok, c.gen
}

func (c *Store) put(g group, key string, v any, gen uint64) {
	if c.afterRead != nil {
		c.afterRead()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen || c.declaring > 0 {
		return
	}
	if _, ok := c.entries[g][key]; !ok && len(c.entries[g]) >= maxEntries {
		clear(c.entries[g])
	}
	c.entries[g][key] = v
}

// cached answers from the cache or reads with load and caches a success.
// Callers get copies (see clone*), so that nobody can change an entry.
// While the change source is not current every call reads; what it reads
// is still cached, for when the source has caught up (it delivers what it
// missed first, in commit order, and that drops what is stale).
func cached[T any](c *Store, g group, key string, load func() (T, error), clone func(T) T) (T, error) {
	hit, ok, gen := c.get(g, key)
	if ok && (c.current == nil || c.current()) {
		return clone(hit.(T)), nil
	}
	v, err := load()
	if err != nil {
		return v, err
	}
	c.put(g, key, v, gen)
	return clone(v), nil
}

// after runs a write, then drops what it changed, whether it succeeded or
// not (a failed write may have committed).
func (c *Store) after(err error, changes ...shiftkey.Change) error {
	for _, ch := range changes {
		c.Invalidate(ch)
	}
	return err
}

func k2(a, b string) string { return a + "\x00" + b }

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func cloneSlice[T any](s []T) []T { return slices.Clone(s) }

func clonePtrs[T any](s []*T) []*T {
	out := make([]*T, len(s))
	for i, p := range s {
		out[i] = clonePtr(p)
	}
	return out
}

func cloneSession(s *shiftkey.Session) *shiftkey.Session {
	out := clonePtr(s)
	out.Tags = slices.Clone(s.Tags)
	return out
}

// Cached reads.

// AccessKey returns the access key id.
func (c *Store) AccessKey(ctx context.Context, id string) (*shiftkey.AccessKey, error) {
	return cached(c, gKeys, id, func() (*shiftkey.AccessKey, error) { return c.Store.AccessKey(ctx, id) }, clonePtr)
}

// Session returns the STS session of access key id; one another process
// ended before the call is not answered from memory.
func (c *Store) Session(ctx context.Context, id string) (*shiftkey.Session, error) {
	if c.catchUp != nil {
		c.catchUp()
	}
	return cached(c, gSessions, id, func() (*shiftkey.Session, error) { return c.Store.Session(ctx, id) }, cloneSession)
}

// Entity returns a user, group or role.
func (c *Store) Entity(ctx context.Context, kind shiftkey.EntityKind, name string) (*shiftkey.Entity, error) {
	return cached(c, gIAM, k2("entity:"+string(kind), name), func() (*shiftkey.Entity, error) { return c.Store.Entity(ctx, kind, name) }, clonePtr)
}

// EntityByID returns a user, group or role by its unique id (as an
// access key names its user).
func (c *Store) EntityByID(ctx context.Context, kind shiftkey.EntityKind, id string) (*shiftkey.Entity, error) {
	return cached(c, gIAM, k2("entityid:"+string(kind), id), func() (*shiftkey.Entity, error) { return c.Store.EntityByID(ctx, kind, id) }, clonePtr)
}

// Tags returns the tags of an identity, a managed policy or a cluster.
func (c *Store) Tags(ctx context.Context, kind shiftkey.EntityKind, name string) ([]shiftkey.Tag, error) {
	return cached(c, gTags, k2(string(kind), name), func() ([]shiftkey.Tag, error) { return c.Store.Tags(ctx, kind, name) }, cloneSlice)
}

// InlinePolicies returns the inline policies of an identity.
func (c *Store) InlinePolicies(ctx context.Context, kind shiftkey.EntityKind, owner string) ([]shiftkey.PolicyDocument, error) {
	return cached(c, gIAM, k2("inline:"+string(kind), owner), func() ([]shiftkey.PolicyDocument, error) {
		return c.Store.InlinePolicies(ctx, kind, owner)
	}, cloneSlice)
}

// AttachedPolicies returns the managed policies attached to an identity.
func (c *Store) AttachedPolicies(ctx context.Context, kind shiftkey.EntityKind, owner string) ([]*shiftkey.ManagedPolicy, error) {
	return cached(c, gIAM, k2("attached:"+string(kind), owner), func() ([]*shiftkey.ManagedPolicy, error) {
		return c.Store.AttachedPolicies(ctx, kind, owner)
	}, clonePtrs)
}

// ManagedPolicy returns a customer-managed policy.
func (c *Store) ManagedPolicy(ctx context.Context, arn string) (*shiftkey.ManagedPolicy, error) {
	return cached(c, gIAM, "policy:"+arn, func() (*shiftkey.ManagedPolicy, error) { return c.Store.ManagedPolicy(ctx, arn) }, clonePtr)
}

// GroupsForUser returns the groups of a user.
func (c *Store) GroupsForUser(ctx context.Context, user string) ([]*shiftkey.Entity, error) {
	return cached(c, gIAM, "groups:"+user, func() ([]*shiftkey.Entity, error) { return c.Store.GroupsForUser(ctx, user) }, clonePtrs)
}

// Cluster returns a cluster.
func (c *Store) Cluster(ctx context.Context, id string) (*shiftkey.Cluster, error) {
	return cached(c, gClusters, id, func() (*shiftkey.Cluster, error) { return c.Store.Cluster(ctx, id) }, clonePtr)
}

// Workgroup returns a workgroup.
func (c *Store) Workgroup(ctx context.Context, name string) (*shiftkey.Workgroup, error) {
	return cached(c, gServerless, "wg:"+name, func() (*shiftkey.Workgroup, error) { return c.Store.Workgroup(ctx, name) }, clonePtr)
}

// Namespace returns a namespace.
func (c *Store) Namespace(ctx context.Context, name string) (*shiftkey.Namespace, error) {
	return cached(c, gServerless, "ns:"+name, func() (*shiftkey.Namespace, error) { return c.Store.Namespace(ctx, name) }, clonePtr)
}

// CustomDomain returns a custom domain, cached under the name as asked (a
// TLS client's server name as typed): a domain's change drops every
// spelling (Invalidate), since the stores match names in any case.
func (c *Store) CustomDomain(ctx context.Context, name string) (*shiftkey.CustomDomain, error) {
	return cached(c, gDomains, name, func() (*shiftkey.CustomDomain, error) { return c.Store.CustomDomain(ctx, name) }, clonePtr)
}

// Writes: each drops what it may have changed once it has returned.

func ch(kind shiftkey.EntityKind, name string) shiftkey.Change {
	return shiftkey.Change{Kind: kind, Name: name}
}

func (c *Store) CreateCluster(ctx context.Context, cl *shiftkey.Cluster) error {
	return c.after(c.Store.CreateCluster(ctx, cl), ch(shiftkey.KindCluster, cl.Identifier))
}

func (c *Store) UpdateCluster(ctx context.Context, cl *shiftkey.Cluster) error {
	return c.after(c.Store.UpdateCluster(ctx, cl), ch(shiftkey.KindCluster, cl.Identifier))
}

func (c *Store) DeleteCluster(ctx context.Context, id string) error {
	// Its custom domains go with it.
	return c.after(c.Store.DeleteCluster(ctx, id), ch(shiftkey.KindCluster, id), ch(shiftkey.KindDomain, ""))
}

func (c *Store) CreateEntity(ctx context.Context, e *shiftkey.Entity) error {
	return c.after(c.Store.CreateEntity(ctx, e), ch(e.Kind, e.Name))
}

func (c *Store) DeleteEntity(ctx context.Context, kind shiftkey.EntityKind, name string) error {
	return c.after(c.Store.DeleteEntity(ctx, kind, name), ch(kind, name))
}

func (c *Store) CreateAccessKey(ctx context.Context, k *shiftkey.AccessKey) error {
	return c.after(c.Store.CreateAccessKey(ctx, k), ch(shiftkey.KindAccessKey, k.ID))
}

func (c *Store) UpdateRole(ctx context.Context, r *shiftkey.Entity, fields shiftkey.RoleFields) error {
	return c.after(c.Store.UpdateRole(ctx, r, fields), ch(shiftkey.KindRole, r.Name))
}

// RenameEntity drops what was cached under both names (an IAM change
// drops every identity, key and tag entry: a key carries its user's name).
func (c *Store) RenameEntity(ctx context.Context, kind shiftkey.EntityKind, from, to *shiftkey.Entity) error {
	return c.after(c.Store.RenameEntity(ctx, kind, from, to), ch(kind, from.Name), ch(kind, to.Name))
}

func (c *Store) UpdateAccessKey(ctx context.Context, id, status string) error {
	return c.after(c.Store.UpdateAccessKey(ctx, id, status), ch(shiftkey.KindAccessKey, id))
}

func (c *Store) RecordAccessKeyUse(ctx context.Context, id string, at time.Time, service, region string) error {
	return c.after(c.Store.RecordAccessKeyUse(ctx, id, at, service, region), ch(shiftkey.KindAccessKey, id))
}

func (c *Store) DeleteAccessKey(ctx context.Context, id string) error {
	return c.after(c.Store.DeleteAccessKey(ctx, id), ch(shiftkey.KindAccessKey, id))
}

func (c *Store) PutInlinePolicy(ctx context.Context, kind shiftkey.EntityKind, owner string, p shiftkey.PolicyDocument) error {
	return c.after(c.Store.PutInlinePolicy(ctx, kind, owner, p), ch(kind, owner))
}

func (c *Store) PutInlinePolicyAdmitted(ctx context.Context, kind shiftkey.EntityKind, owner string, p shiftkey.PolicyDocument, admit func([]shiftkey.PolicyDocument) error) error {
	return c.after(c.Store.PutInlinePolicyAdmitted(ctx, kind, owner, p, admit), ch(kind, owner))
}

func (c *Store) DeleteInlinePolicy(ctx context.Context, kind shiftkey.EntityKind, owner, name string) error {
	return c.after(c.Store.DeleteInlinePolicy(ctx, kind, owner, name), ch(kind, owner))
}

func (c *Store) CreateManagedPolicy(ctx context.Context, p *shiftkey.ManagedPolicy) error {
	return c.after(c.Store.CreateManagedPolicy(ctx, p), ch(shiftkey.KindPolicy, p.ARN))
}

func (c *Store) UpdateManagedPolicy(ctx context.Context, p *shiftkey.ManagedPolicy) error {
	return c.after(c.Store.UpdateManagedPolicy(ctx, p), ch(shiftkey.KindPolicy, p.ARN))
}

func (c *Store) DeleteManagedPolicy(ctx context.Context, arn string) error {
	return c.after(c.Store.DeleteManagedPolicy(ctx, arn), ch(shiftkey.KindPolicy, arn))
}

// The version writes drop the policy's entries: a new default is the
// document the very next request is evaluated against. PolicyVersions
// itself is not cached.

func (c *Store) CreatePolicyVersion(ctx context.Context, arn string, v *shiftkey.PolicyVersion) error {
	return c.after(c.Store.CreatePolicyVersion(ctx, arn, v), ch(shiftkey.KindPolicy, arn))
}

func (c *Store) SetDefaultPolicyVersion(ctx context.Context, arn, id string) error {
	return c.after(c.Store.SetDefaultPolicyVersion(ctx, arn, id), ch(shiftkey.KindPolicy, arn))
}

func (c *Store) DeletePolicyVersion(ctx context.Context, arn, id string) error {
	return c.after(c.Store.DeletePolicyVersion(ctx, arn, id), ch(shiftkey.KindPolicy, arn))
}

func (c *Store) AttachPolicy(ctx context.Context, kind shiftkey.EntityKind, owner, arn string) error {
	return c.after(c.Store.AttachPolicy(ctx, kind, owner, arn), ch(kind, owner))
}

func (c *Store) DetachPolicy(ctx context.Context, kind shiftkey.EntityKind, owner, arn string) error {
	return c.after(c.Store.DetachPolicy(ctx, kind, owner, arn), ch(kind, owner))
}

func (c *Store) AddUserToGroup(ctx context.Context, group, user string) error {
	return c.after(c.Store.AddUserToGroup(ctx, group, user), ch(shiftkey.KindGroup, group))
}

func (c *Store) RemoveUserFromGroup(ctx context.Context, group, user string) error {
	return c.after(c.Store.RemoveUserFromGroup(ctx, group, user), ch(shiftkey.KindGroup, group))
}

func (c *Store) TagEntity(ctx context.Context, kind shiftkey.EntityKind, name string, tags []shiftkey.Tag) error {
	return c.after(c.Store.TagEntity(ctx, kind, name, tags), ch(kind, name))
}

func (c *Store) UntagEntity(ctx context.Context, kind shiftkey.EntityKind, name string, keys []string) error {
	return c.after(c.Store.UntagEntity(ctx, kind, name, keys), ch(kind, name))
}

func (c *Store) CreateSession(ctx context.Context, s *shiftkey.Session) error {
	return c.after(c.Store.CreateSession(ctx, s), ch(shiftkey.KindSession, s.AccessKeyID))
}

func (c *Store) DeleteExpiredSessions(ctx context.Context, before time.Time) (int, error) {
	n, err := c.Store.DeleteExpiredSessions(ctx, before)
	return n, c.after(err, ch(shiftkey.KindSession, ""))
}

// EndSessions drops every cached session, ended or not, whether it
// succeeded or not: a failed end may have committed, and which sessions it
// ended is then unknown.
func (c *Store) EndSessions(ctx context.Context, key string, at time.Time) ([]*shiftkey.Session, error) {
	ended, err := c.Store.EndSessions(ctx, key, at)
	return ended, c.after(err, ch(shiftkey.KindSession, ""))
}

func (c *Store) CreateNamespace(ctx context.Context, n *shiftkey.Namespace) error {
	return c.after(c.Store.CreateNamespace(ctx, n), ch(shiftkey.KindNamespace, n.Name))
}

func (c *Store) DeleteNamespace(ctx context.Context, name string) error {
	return c.after(c.Store.DeleteNamespace(ctx, name), ch(shiftkey.KindNamespace, name))
}

func (c *Store) CreateWorkgroup(ctx context.Context, w *shiftkey.Workgroup) error {
	return c.after(c.Store.CreateWorkgroup(ctx, w), ch(shiftkey.KindWorkgroup, w.Name))
}

func (c *Store) UpdateWorkgroup(ctx context.Context, w *shiftkey.Workgroup) error {
	return c.after(c.Store.UpdateWorkgroup(ctx, w), ch(shiftkey.KindWorkgroup, w.Name))
}

func (c *Store) DeleteWorkgroup(ctx context.Context, name string) error {
	// Its custom domains go with it.
	return c.after(c.Store.DeleteWorkgroup(ctx, name), ch(shiftkey.KindWorkgroup, name), ch(shiftkey.KindDomain, ""))
}

func (c *Store) CreateCustomDomain(ctx context.Context, d *shiftkey.CustomDomain) error {
	return c.after(c.Store.CreateCustomDomain(ctx, d), ch(shiftkey.KindDomain, d.Name))
}

func (c *Store) UpdateCustomDomain(ctx context.Context, d *shiftkey.CustomDomain) error {
	return c.after(c.Store.UpdateCustomDomain(ctx, d), ch(shiftkey.KindDomain, d.Name))
}

func (c *Store) DeleteCustomDomain(ctx context.Context, name string) error {
	return c.after(c.Store.DeleteCustomDomain(ctx, name), ch(shiftkey.KindDomain, name))
}

var _ shiftkey.Store = (*Store)(nil)

// The declared-identity marks (shiftkey.DeclaredStore) pass through when
// the wrapped store keeps them, so that reconciling the config can run
// through the cache.

func (c *Store) declared() (shiftkey.DeclaredStore, error) {
	d, ok := c.Store.(shiftkey.DeclaredStore)
	if !ok {
		return nil, errors.New("storecache: the wrapped store keeps no declared identities")
	}
	return d, nil
}

func (c *Store) MarkDeclared(ctx context.Context, ref shiftkey.DeclaredRef) error {
	d, err := c.declared()
	if err != nil {
		return err
	}
	return d.MarkDeclared(ctx, ref)
}

func (c *Store) UnmarkDeclared(ctx context.Context, kind shiftkey.EntityKind, id string) error {
	d, err := c.declared()
	if err != nil {
		return err
	}
	return d.UnmarkDeclared(ctx, kind, id)
}

func (c *Store) DeclaredRefs(ctx context.Context, kind shiftkey.EntityKind) ([]shiftkey.DeclaredRef, error) {
	d, err := c.declared()
	if err != nil {
		return nil, err
	}
	return d.DeclaredRefs(ctx, kind)
}

// Declaring runs the wrapped store's. Its writes commit together when it
// returns, or not at all (the stores apply a config in one transaction):
// while it runs nothing read is cached (fn's reads see its own writes,
// which may yet be undone), and once it returns every entry is dropped
// (what others read before the commit is stale after it).
func (c *Store) Declaring(ctx context.Context, fn func(context.Context) error) error {
	d, err := c.declared()
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.declaring++
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.declaring--
		c.mu.Unlock()
		c.Invalidate(shiftkey.Change{})
	}()
	return d.Declaring(ctx, fn)
}
