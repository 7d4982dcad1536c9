package iamapi

import (
	"context"
	"strings"

	"github.com/shiftkey/shiftkey"
)

// Permissions boundaries of users and roles: CreateUser and CreateRole's
// PermissionsBoundary, Put/Delete{User,Role}PermissionsBoundary. The
// authorizer evaluates them (authz); here they are set, with the
// iam:PermissionsBoundary condition key IAM's delegation pattern tests.

// boundaryXML is a user's or role's PermissionsBoundary as GetUser,
// GetRole, CreateUser and CreateRole return it (ListUsers and ListRoles
// leave it out, as IAM does).
type boundaryXML struct {
	PermissionsBoundaryType string
	PermissionsBoundaryArn  string
}

func toBoundaryXML(e *shiftkey.Entity) *boundaryXML {
	if e.PermissionsBoundary == "" {
		return nil
	}
	return &boundaryXML{shiftkey.PermissionsBoundaryPolicy, e.PermissionsBoundary}
}

// permissionsBoundary reads PermissionsBoundary: an ARN (arnType, 20-2048
// characters); "" when it is optional and absent.
func (p params) permissionsBoundary(required bool) (string, error) {
	arn, ok := p.opt("PermissionsBoundary")
	switch {
	case !ok && !required:
		return "", nil
	case !ok || arn == "":
		return "", shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value null at 'permissionsBoundary' failed to satisfy constraint: Member must not be null")
	case len(arn) < 20:
		return "", shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value '%s' at 'permissionsBoundary' failed to satisfy constraint: Member must have length greater than or equal to 20", arn)
	case len(arn) > 2048:
		return "", shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value '%s' at 'permissionsBoundary' failed to satisfy constraint: Member must have length less than or equal to 2048", arn)
	case !strings.HasPrefix(arn, "arn:"):
		return "", shiftkey.Errorf(CodeInvalidInput, "ARN %s is not valid.", arn)
	}
	return arn, nil
}

// boundaryKey adds iam:PermissionsBoundary = arn to keys (a new map),
// unless arn is "": the key is then absent, as IAM leaves it for a
// CreateUser or CreateRole without a boundary, so that "only with our
// boundary" (StringEquals) refuses it.
func boundaryKey(keys map[string][]string, arn string) map[string][]string {
	if arn == "" {
		return keys
	}
	out := make(map[string][]string, len(keys)+1)
	for k, v := range keys {
		out[k] = v
	}
	out["iam:PermissionsBoundary"] = []string{arn}
	return out
}

// boundaryKeyedActions are the calls on an existing user or role whose
// iam:PermissionsBoundary is the entity's own boundary (the Service
// Authorization Reference for IAM): a delegate may be denied changing
// the policies, or removing the boundary, of an entity with a given
// boundary. Put{User,Role}PermissionsBoundary carry the requested
// boundary instead (their handlers give it).
var boundaryKeyedActions = map[string]bool{
	"AttachUserPolicy": true, "DetachUserPolicy": true, "PutUserPolicy": true, "DeleteUserPolicy": true, "DeleteUserPermissionsBoundary": true,
	"AttachRolePolicy": true, "DetachRolePolicy": true, "PutRolePolicy": true, "DeleteRolePolicy": true, "DeleteRolePermissionsBoundary": true,
}

// entityBoundaryKey is keys with e's boundary as iam:PermissionsBoundary
// when action is one of boundaryKeyedActions and the call gave none.
func entityBoundaryKey(keys map[string][]string, action string, e *shiftkey.Entity) map[string][]string {
	if !boundaryKeyedActions[action] {
		return keys
	}
	if _, given := keys["iam:PermissionsBoundary"]; given {
		return keys
	}
	return boundaryKey(keys, e.PermissionsBoundary)
}

// putBoundary is Put{User,Role}PermissionsBoundary: authorized on the
// entity with the boundary asked for as iam:PermissionsBoundary; the
// policy must exist (NoSuchEntity), checked in the store's write.
func (s *Service) putBoundary(kind shiftkey.EntityKind) handler {
	return func(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
		owner, err := p.newOwner(kind)
		if err != nil {
			return nil, err
		}
		arn, err := p.permissionsBoundary(true)
		if err != nil {
			return nil, err
		}
		e, err := s.entity(ctx, c, "Put"+kindTitle(kind)+"PermissionsBoundary", kind, owner, boundaryKey(nil, arn))
		if err != nil {
			return nil, err
		}
		return nil, s.Store.SetPermissionsBoundary(ctx, kind, e.Name, arn)
	}
}

// deleteBoundary is Delete{User,Role}PermissionsBoundary: authorized with
// the entity's boundary as iam:PermissionsBoundary; one without a
// boundary is left as it is.
func (s *Service) deleteBoundary(kind shiftkey.EntityKind) handler {
	return func(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
		owner, err := p.newOwner(kind)
		if err != nil {
			return nil, err
		}
		e, err := s.entity(ctx, c, "Delete"+kindTitle(kind)+"PermissionsBoundary", kind, owner)
		if err != nil {
			return nil, err
		}
		return nil, s.Store.SetPermissionsBoundary(ctx, kind, e.Name, "")
	}
}

// boundaryUsage counts, by policy ARN, the users and roles whose boundary
// it is (ListPolicies' PermissionsBoundaryUsageCount).
func (s *Service) boundaryUsage(ctx context.Context) (map[string]int, error) {
	n := map[string]int{}
	for _, kind := range []shiftkey.EntityKind{shiftkey.KindUser, shiftkey.KindRole} {
		es, err := s.Store.Entities(ctx, kind, "/")
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			if e.PermissionsBoundary != "" {
				n[e.PermissionsBoundary]++
			}
		}
	}
	return n, nil
}
