package iamapi

import (
	"context"

	"github.com/shiftkey/shiftkey"
)

// What every kind of entity (user, group, role) goes through: resolving
// and authorizing it, creating, listing and deleting it.

// entity resolves name, authorizing action on it first (so a caller
// without permission cannot probe which names exist). The entity's tags
// are its aws:ResourceTag/* keys; extra adds request keys.
func (s *Service) entity(ctx context.Context, c *shiftkey.Caller, action string, kind shiftkey.EntityKind, name string, extra ...map[string][]string) (*shiftkey.Entity, error) {
	var keys map[string][]string
	if len(extra) > 0 {
		keys = extra[0]
	}
	e, err := s.Store.Entity(ctx, kind, name)
	if shiftkey.ErrorCode(err) == shiftkey.CodeNoSuchEntity {
		if aerr := s.authorizeWith(ctx, c, action, s.arn(kind, "/", name), keys); aerr != nil {
			return nil, aerr
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	if kind != shiftkey.KindGroup {
		tags, err := s.Store.Tags(ctx, kind, e.Name)
		if err != nil {
			return nil, err
		}
		// Users and roles are IAM resources: their tags are both
		// aws:ResourceTag/* and iam:ResourceTag/*.
		keys = shiftkey.ResourceTagKeys(keys, tags, "iam:ResourceTag/")
	}
	keys = entityBoundaryKey(keys, action, e)
	return e, s.authorizeWith(ctx, c, action, e.ARN, keys)
}

// owned resolves the owner of a per-entity call (UserName, GroupName or
// RoleName after kind), authorizing action on it.
func (s *Service) owned(ctx context.Context, c *shiftkey.Caller, p params, kind shiftkey.EntityKind, action string, extra ...map[string][]string) (*shiftkey.Entity, error) {
	owner, err := p.owner(kind)
	if err != nil {
		return nil, err
	}
	return s.entity(ctx, c, action, kind, owner, extra...)
}

// ownedPage is one page of what read lists for the owner of a List* call.
func ownedPage[T any](ctx context.Context, s *Service, c *shiftkey.Caller, p params, kind shiftkey.EntityKind, action string,
	read func(context.Context, shiftkey.EntityKind, string) ([]T, error), key func(T) string) ([]T, pageXML, error) {
	e, err := s.owned(ctx, c, p, kind, action)
	if err != nil {
		return nil, pageXML{}, err
	}
	all, err := read(ctx, kind, e.Name)
	if err != nil {
		return nil, pageXML{}, err
	}
	return page(p, all, key)
}

// newEntity reads the name and Path of an entity to create.
func (s *Service) newEntity(p params, kind shiftkey.EntityKind, idPrefix string) (*shiftkey.Entity, error) {
	name, err := p.newOwner(kind)
	if err != nil {
		return nil, err
	}
	path, err := p.path("Path")
	if err != nil {
		return nil, err
	}
	boundary, err := p.permissionsBoundary(false)
	if err != nil {
		return nil, err
	}
	return &shiftkey.Entity{Kind: kind, Name: name, ID: shiftkey.NewID(idPrefix), Path: path, ARN: s.arn(kind, path, name), CreatedAt: s.now(),
		PermissionsBoundary: boundary}, nil
}

// createEntity authorizes action on the new entity e with the request's
// tags, and, when there are tags, Tag{User,Role} too (as AWS does: a
// caller who may create users but not tag them cannot set tags by
// creating), then stores e with its tags in one write.
func (s *Service) createEntity(ctx context.Context, c *shiftkey.Caller, action string, e *shiftkey.Entity, tags []shiftkey.Tag) error {
	keys := boundaryKey(shiftkey.RequestTagKeys(nil, tags), e.PermissionsBoundary)
	if err := s.authorizeWith(ctx, c, action, e.ARN, keys); err != nil {
		return err
	}
	if len(tags) > 0 {
		if err := s.authorizeWith(ctx, c, "Tag"+kindTitle(e.Kind), e.ARN, keys); err != nil {
			return err
		}
	}
	e.Tags = tags
	return s.Store.CreateEntity(ctx, e)
}

// listEntities is one page of the entities of kind under PathPrefix.
func (s *Service) listEntities(ctx context.Context, c *shiftkey.Caller, p params, kind shiftkey.EntityKind, action string) ([]*shiftkey.Entity, pageXML, error) {
	prefix, err := p.pathPrefix()
	if err != nil {
		return nil, pageXML{}, err
	}
	if err := s.authorize(ctx, c, action, s.arn(kind, "/", "*")); err != nil {
		return nil, pageXML{}, err
	}
	all, err := s.Store.Entities(ctx, kind, prefix)
	if err != nil {
		return nil, pageXML{}, err
	}
	return page(p, all, entityName)
}

// deleteEntity deletes e once nothing holds it: no policy, and not
// blocked (the entity's own dependants, named by why).
func (s *Service) deleteEntity(ctx context.Context, e *shiftkey.Entity, blocked bool, why string) error {
	if err := s.checkNoPolicies(ctx, e); err != nil {
		return err
	}
	if blocked {
		return shiftkey.Errorf(CodeDeleteConflict, "Cannot delete entity, %s.", why)
	}
	return s.Store.DeleteEntity(ctx, e.Kind, e.Name)
}

func (s *Service) checkNoPolicies(ctx context.Context, e *shiftkey.Entity) error {
	inline, err := s.Store.InlinePolicies(ctx, e.Kind, e.Name)
	if err != nil {
		return err
	}
	attached, err := s.Store.AttachedPolicies(ctx, e.Kind, e.Name)
	if err != nil {
		return err
	}
	if len(inline) > 0 {
		return shiftkey.Errorf(CodeDeleteConflict, "Cannot delete entity, must delete policies first.")
	}
	if len(attached) > 0 {
		return shiftkey.Errorf(CodeDeleteConflict, "Cannot delete entity, must detach all policies first.")
	}
	return nil
}

// entityName is the key entity lists page by.
func entityName(e *shiftkey.Entity) string { return e.Name }

// rename is UpdateUser and UpdateGroup: a new name (newNameParam, at most
// maxName characters, as CreateUser/CreateGroup check it) and/or a new
// NewPath for the entity named by the call's UserName or GroupName, each
// left as it is when absent. As in IAM, the caller needs the action on the
// entity's ARN and on the ARN it will have, both with the entity's tags as
// aws:ResourceTag/* (it keeps them); an unknown entity is NoSuchEntity and
// a name another entity of the kind has, in any case, EntityAlreadyExists,
// each only once both are authorized; one another call changed between
// this call's read and its write, ConcurrentModification. A rename to the
// name and path the entity has writes nothing and answers OK.
func (s *Service) rename(kind shiftkey.EntityKind, newNameParam string, maxName int) handler {
	action := "Update" + kindTitle(kind)
	return func(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
		name, err := p.owner(kind)
		if err != nil {
			return nil, err
		}
		newName, err := p.name(newNameParam, maxName, false)
		if err != nil {
			return nil, err
		}
		newPath, setPath := p.opt("NewPath")
		if setPath {
			if newPath, err = p.path("NewPath"); err != nil {
				return nil, err
			}
		}
		e, err := s.entity(ctx, c, action, kind, name)
		if err != nil {
			return nil, err
		}
		to := *e
		if newName != "" {
			to.Name = newName
		}
		if setPath {
			to.Path = newPath
		}
		to.ARN = s.arn(kind, to.Path, to.Name)
		var keys map[string][]string
		if kind == shiftkey.KindUser {
			tags, err := s.Store.Tags(ctx, kind, e.Name)
			if err != nil {
				return nil, err
			}
			keys = shiftkey.ResourceTagKeys(nil, tags, "iam:ResourceTag/")
		}
		if err := s.authorizeWith(ctx, c, action, to.ARN, keys); err != nil {
			return nil, err
		}
		if to.Name == e.Name && to.Path == e.Path {
			return nil, nil
		}
		// e as read and authorized: one renamed, moved or created again
		// since is ConcurrentModification, not renamed.
		return nil, s.Store.RenameEntity(ctx, kind, e, &to)
	}
}
