package shiftkey

import (
	"context"
	"time"
)

// Namespace is a Redshift Serverless namespace: the database objects and
// users a workgroup serves.
type Namespace struct {
	Name          string
	Region        string
	ID            string // UUID
	DBName        string
	AdminUsername string
	Status        string // "AVAILABLE", "DELETING"
	CreatedAt     time.Time
}

// Workgroup is a Redshift Serverless workgroup: like a cluster, one backend
// PostgreSQL reached through one gateway endpoint.
type Workgroup struct {
	Name         string
	Region       string // the AWS region it lives in (as for a Cluster)
	ID           string // UUID; the workgroup ARN uses it
	Namespace    string
	Status       string // "AVAILABLE", "CREATING", "MODIFYING", "DELETING"
	BaseCapacity int
	Endpoint     Endpoint
	Backend      Backend
	CreatedAt    time.Time
}

// CredentialScope is the key credentials of a workgroup are stored under,
// distinct from every cluster identifier (those never contain "/").
func (w *Workgroup) CredentialScope() string { return WorkgroupScopePrefix + w.ID }

// ServerlessStore keeps namespaces and workgroups.
type ServerlessStore interface {
	CreateNamespace(ctx context.Context, n *Namespace) error        // CodeConflict when it exists
	Namespace(ctx context.Context, name string) (*Namespace, error) // CodeResourceNotFound
	Namespaces(ctx context.Context) ([]*Namespace, error)
	DeleteNamespace(ctx context.Context, name string) error
	CreateWorkgroup(ctx context.Context, w *Workgroup) error // CodeConflict when it exists
	UpdateWorkgroup(ctx context.Context, w *Workgroup) error
	Workgroup(ctx context.Context, name string) (*Workgroup, error) // CodeResourceNotFound
	Workgroups(ctx context.Context) ([]*Workgroup, error)
	DeleteWorkgroup(ctx context.Context, name string) error
}

// Redshift Serverless error codes.
const (
	CodeResourceNotFound = "ResourceNotFoundException"
	CodeConflict         = "ConflictException"
	CodeValidation       = "ValidationException"
)

// Provisioner runs the backends of workgroups created through the API: in
// dev mode a PostgreSQL server of their own and a gateway endpoint. Serve
// has none: its backends are declared in the config.
type Provisioner interface {
	// StartWorkgroup brings up w's backend and gateway, setting w.Backend
	// and w.Endpoint (port w.Endpoint.Port as requested).
	StartWorkgroup(ctx context.Context, w *Workgroup, ns *Namespace) error
	// MoveWorkgroup reopens w's gateway on another port.
	MoveWorkgroup(ctx context.Context, w *Workgroup, port int) error
	// StopWorkgroup closes w's gateway and removes its backend and data.
	StopWorkgroup(ctx context.Context, w *Workgroup) error
}

// WorkgroupHealth is a Provisioner that knows more of a workgroup's state
// than its stored row: a server that died, or one that could not be
// resumed. GetWorkgroup and ListWorkgroups report it; GetCredentials
// refuses a workgroup that is not AVAILABLE.
type WorkgroupHealth interface {
	// WorkgroupStatus is w's status when it differs from the stored one
	// ("MODIFYING"), or "".
	WorkgroupStatus(w *Workgroup) string
}

// SessionGrant is a group membership the gateway granted for live sessions;
// it is recorded before the GRANT so that a crash cannot leave it behind
// unnoticed.
type SessionGrant struct {
	Scope string // cluster identifier or workgroup credential scope
	Role  string
	Group string
	// LeftBy, as Grants reads it, names the processes whose lapsed leases
	// left the grant to this one (comma-separated store origins): a
	// replica that died. Empty for this process's own.
	LeftBy string
	// Siblings, given to GrantHeldElsewhere and GrantLapsedElsewhere, are
	// the other scopes on Scope's backend server: their records of the
	// role and group count whoever made them, this process included, as
	// the membership is the server's.
	Siblings []string
}

// GrantStore records session-scoped grants. In a store replicas share,
// each replica's records are its own, leased; Grants returns those a
// replica may reconcile (its own, and those whose owner stopped renewing).
type GrantStore interface {
	RecordGrant(ctx context.Context, g SessionGrant) error
	ForgetGrant(ctx context.Context, g SessionGrant) error
	Grants(ctx context.Context, scope string) ([]SessionGrant, error)
	// GrantHeldElsewhere reports whether another live process holds g for
	// its sessions: then a membership the role already has is that
	// process's grant, to share, and not to revoke when this process's
	// sessions end (always false in a store one process serves).
	GrantHeldElsewhere(ctx context.Context, g SessionGrant) (bool, error)
	// GrantLapsedElsewhere reports whether another process's record of g
	// outlived its lease: that process may be dead, or only paused or cut
	// off from the store with its sessions still open on the backend
	// (always false in a store one process serves).
	GrantLapsedElsewhere(ctx context.Context, g SessionGrant) (bool, error)
}

// GroupCut is a role's membership of a session group that a replica
// revoked because the group turned unsafe while sessions held it. The
// membership was the role's, so a session of the role on any replica may
// have run SET ROLE to the group and would keep acting as it after the
// REVOKE: each replica ends its sessions of the role that began before At.
type GroupCut struct {
	Scope  string // cluster identifier or workgroup credential scope
	Role   string
	Group  string
	Reason string    // why the group is unsafe, as the sessions are told
	At     time.Time // by the store's clock, after the REVOKE committed
	// Age, when recording, is how long before the record the REVOKE
	// committed, by the recorder's monotonic clock (a cut the store
	// missed at first): the store dates the cut that much before its now.
	Age time.Duration
}

// GroupCutStore is implemented by stores that several processes serve
// (the PostgreSQL store): a replica records the memberships it revoked as
// unsafe, and the others, told by the change feed (KindGroupCut), read
// them and end their sessions of the role.
type GroupCutStore interface {
	// RecordGroupCut records c as this process's, dated At by the store's
	// clock (c.Age before its now), and announces it to the other
	// processes.
	RecordGroupCut(ctx context.Context, c GroupCut) error
	// GroupCuts returns the cuts of scope that other processes recorded
	// at or after since: role's, or every role's when role is "".
	GroupCuts(ctx context.Context, scope, role string, since time.Time) ([]GroupCut, error)
}
