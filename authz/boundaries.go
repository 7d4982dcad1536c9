package authz

import (
	"context"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/iam"
)

// boundary is the permissions boundary of the user or role kind/name,
// parsed from its policy's default version (read through the store, which
// a cache drops on any write of the entity or the policy); nil when it has
// none, or when the entity is gone (its policies went with it: nothing
// allows). A boundary whose policy is gone (deleted by a shiftkey that
// knew no boundaries) allows nothing: the entity was meant to be capped,
// and lifting the cap would grant what its policies say.
func (a *Authorizer) boundary(ctx context.Context, kind shiftkey.EntityKind, name string) (*iam.Policy, error) {
	e, err := a.Store.Entity(ctx, kind, name)
	if shiftkey.ErrorCode(err) == shiftkey.CodeNoSuchEntity {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if e.PermissionsBoundary == "" {
		return nil, nil
	}
	m, err := a.Store.ManagedPolicy(ctx, e.PermissionsBoundary)
	if shiftkey.ErrorCode(err) == shiftkey.CodeNoSuchEntity {
		a.logger().WarnContext(ctx, "permissions boundary policy does not exist: it denies every call of its entity", "entity", e.ARN, "boundary", e.PermissionsBoundary)
		// No statement: an implicit deny of everything.
		return &iam.Policy{Name: e.PermissionsBoundary + " (the policy does not exist)", Version: "2012-10-17"}, nil
	}
	if err != nil {
		return nil, err
	}
	return a.parse(ctx, m.ARN, m.Document), nil
}

// sessionLimits are what limit a role's session when a trust policy names
// the caller only by its role (iam.GrantRole): an implicit deny in its
// role's permissions boundary or in its session policy, as AWS documents
// for a resource-based policy that names a role ARN. ok when neither
// denies (or there is neither); else the decision, its explanation and
// the AccessDenied message's suffix.
func sessionLimits(set *PolicySet, req iam.Request) (d iam.Decision, why, suffix string, ok bool) {
	if set.Boundary != nil {
		d = iam.Evaluate(req, set.Boundary)
		if !d.Allowed() {
			return d, Explain(d, "permissions boundary "+set.Boundary.Name), " because no permissions boundary allows the " + req.Action + " action", false
		}
	}
	if set.Session != nil {
		d = iam.Evaluate(req, set.Session...)
		if !d.Allowed() {
			return d, Explain(d, "session policy"), " because no session policy allows the " + req.Action + " action", false
		}
	}
	return d, "", "", true
}
