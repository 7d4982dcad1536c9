package shiftkey

import "context"

// PermissionsBoundaryPolicy is the one PermissionsBoundaryType IAM has: a
// managed policy's ARN.
const PermissionsBoundaryPolicy = "PermissionsBoundaryPolicy"

// BoundaryStore keeps the permissions boundaries of users and roles
// (Entity.PermissionsBoundary). A boundary is a customer-managed policy:
// the stores check, in the write that sets one, that the policy exists,
// and DeleteManagedPolicy refuses one that is a boundary (PolicyAttached),
// checked in its own write, so that no entity is left bounded by a policy
// that is gone.
type BoundaryStore interface {
	// SetPermissionsBoundary sets the boundary of the user or role
	// kind/name to the policy arn, or removes it when arn is "".
	// NoSuchEntity for a missing entity (NoSuchEntity) or policy
	// (NoSuchPolicy).
	SetPermissionsBoundary(ctx context.Context, kind EntityKind, name, arn string) error
	// BoundaryEntities lists the users and roles whose boundary is arn,
	// by kind then name.
	BoundaryEntities(ctx context.Context, arn string) ([]*Entity, error)
}
