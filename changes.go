package shiftkey

// More kinds a Change can name, besides the entity kinds.
const (
	KindAccessKey  EntityKind = "accesskey"  // Name: the access key id
	KindSession    EntityKind = "session"    // Name: the session's access key id
	KindWorkgroup  EntityKind = "workgroup"  // Name: the workgroup name
	KindNamespace  EntityKind = "namespace"  // Name: the namespace name
	KindCredential EntityKind = "credential" // Name: scope + "\x00" + login name
	KindDomain     EntityKind = "domain"     // Name: the custom domain name
	KindGroupCut   EntityKind = "groupcut"   // Name: scope + "\x00" + role (GroupCut)
)

// Change tells caches what one write touched, so that they can drop it.
// An empty Name means every entity of Kind; the zero Change means anything
// may have changed (a feed from another process was lost and regained).
type Change struct {
	Kind EntityKind
	Name string
}

// ChangeSource is implemented by stores that several processes write (the
// PostgreSQL store): Subscribe delivers, in order, the changes that other
// processes made, so that each replica's caches stay current.
type ChangeSource interface {
	Subscribe(fn func(Change))
}

// CurrentSource is a ChangeSource that knows whether its delivery is
// current: Current reports whether every change other processes committed
// more than a moment ago (well under a second) has been delivered. While
// it is not (the feed's connection hangs, or was lost and cannot be made
// again), a cache must read through instead of answering from memory:
// what it holds may have changed elsewhere without its hearing of it.
type CurrentSource interface {
	ChangeSource
	Current() bool
}

// OutsideRevocations is implemented by a store that other processes write
// without a change feed (SQLite, which `shiftkey credentials revoke`
// writes beside the server). CatchUp makes what was revoked or ended
// before the call count: when another process has revoked credentials or
// ended STS sessions since the last call, it calls the functions given to
// OnRevoked, which drop what their caller caches, before it returns. A
// cache of sessions calls it before answering from memory; it reads the
// store only when something was committed since the last call.
type OutsideRevocations interface {
	CatchUp()
	OnRevoked(fn func())
}
