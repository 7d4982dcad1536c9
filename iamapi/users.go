package iamapi

import (
	"context"

	"github.com/shiftkey/shiftkey"
)

// Users.

func (s *Service) createUser(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	e, err := s.newEntity(p, shiftkey.KindUser, "AIDA")
	if err != nil {
		return nil, err
	}
	tags, err := p.tags()
	if err != nil {
		return nil, err
	}
	if err := s.createEntity(ctx, c, "CreateUser", e, tags); err != nil {
		return nil, err
	}
	return struct{ User userXML }{toUserXML(e, tags)}, nil
}

// userOrCaller is the user a call is about: UserName, or the calling user.
func (s *Service) userOrCaller(ctx context.Context, c *shiftkey.Caller, p params, action string) (*shiftkey.Entity, error) {
	name, err := p.name("UserName", 128, false) // existingUserNameType
	if err != nil {
		return nil, err
	}
	if name == "" {
		if c.Principal.Type != shiftkey.PrincipalUser {
			return nil, shiftkey.Errorf(CodeValidationError, "Must specify userName when calling with non-User credentials")
		}
		name = c.Principal.UserName
	}
	return s.entity(ctx, c, action, shiftkey.KindUser, name)
}

func (s *Service) getUser(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	e, err := s.userOrCaller(ctx, c, p, "GetUser")
	if err != nil {
		return nil, err
	}
	tags, err := s.Store.Tags(ctx, e.Kind, e.Name)
	if err != nil {
		return nil, err
	}
	return struct{ User userXML }{toUserXML(e, tags)}, nil
}

func (s *Service) listUsers(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	users, pg, err := s.listEntities(ctx, c, p, shiftkey.KindUser, "ListUsers")
	if err != nil {
		return nil, err
	}
	return struct {
		Users []userXML `xml:"Users>member"`
		pageXML
	}{each(users, untaggedUserXML), pg}, nil
}

func (s *Service) deleteUser(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	e, err := s.owned(ctx, c, p, shiftkey.KindUser, "DeleteUser")
	if err != nil {
		return nil, err
	}
	keys, err := s.Store.AccessKeys(ctx, e.Name)
	if err != nil {
		return nil, err
	}
	groups, err := s.Store.GroupsForUser(ctx, e.Name)
	if err != nil {
		return nil, err
	}
	return nil, s.deleteEntity(ctx, e, len(keys) > 0 || len(groups) > 0, "must delete access keys and remove the user from groups first")
}
