package iamapi

import (
	"context"

	"github.com/shiftkey/shiftkey"
)

// Users.

func (s *Service) createUser(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	name, err := p.name("UserName", 64, true)
	if err != nil {
		return nil, err
	}
	path, err := p.path("Path")
	if err != nil {
		return nil, err
	}
	tags, err := p.tags()
	if err != nil {
		return nil, err
	}
	e := &shiftkey.Entity{Kind: shiftkey.KindUser, Name: name, ID: shiftkey.NewID("AIDA"), Path: path, ARN: s.arn(shiftkey.KindUser, path, name), CreatedAt: s.now()}
	if err := s.authorizeWith(ctx, c, "CreateUser", e.ARN, requestTagKeys(tags, nil)); err != nil {
		return nil, err
	}
	if err := s.Store.CreateEntity(ctx, e); err != nil {
		return nil, err
	}
	if len(tags) > 0 {
		if err := s.Store.TagEntity(ctx, shiftkey.KindUser, name, tags); err != nil {
			return nil, err
		}
	}
	return struct {
		User userXML
	}{toUserXML(e, tags)}, nil
}

func (s *Service) getUser(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	name, err := p.name("UserName", 64, false)
	if err != nil {
		return nil, err
	}
	if name == "" {
		if c.Principal.Type != shiftkey.PrincipalUser {
			return nil, shiftkey.Errorf(CodeValidationError, "Must specify userName when calling with non-User credentials")
		}
		name = c.Principal.UserName
	}
	e, err := s.entity(ctx, c, "GetUser", shiftkey.KindUser, name)
	if err != nil {
		return nil, err
	}
	tags, err := s.Store.Tags(ctx, shiftkey.KindUser, e.Name)
	if err != nil {
		return nil, err
	}
	return struct{ User userXML }{toUserXML(e, tags)}, nil
}

func (s *Service) listUsers(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	prefix, err := p.pathPrefix()
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, c, "ListUsers", s.arn(shiftkey.KindUser, "/", "*")); err != nil {
		return nil, err
	}
	all, err := s.Store.Entities(ctx, shiftkey.KindUser, prefix)
	if err != nil {
		return nil, err
	}
	start, end, next, err := p.page(len(all))
	if err != nil {
		return nil, err
	}
	res := struct {
		Users       []userXML `xml:"Users>member"`
		IsTruncated bool
		Marker      string `xml:",omitempty"`
	}{Users: []userXML{}, IsTruncated: next != "", Marker: next}
	for _, e := range all[start:end] {
		res.Users = append(res.Users, toUserXML(e, nil))
	}
	return res, nil
}

func (s *Service) deleteUser(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	name, err := p.name("UserName", 64, true)
	if err != nil {
		return nil, err
	}
	e, err := s.entity(ctx, c, "DeleteUser", shiftkey.KindUser, name)
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
	if err := s.checkNoPolicies(ctx, e); err != nil {
		return nil, err
	}
	if len(keys) > 0 || len(groups) > 0 {
		return nil, shiftkey.Errorf(CodeDeleteConflict, "Cannot delete entity, must delete access keys and remove the user from groups first.")
	}
	return nil, s.Store.DeleteEntity(ctx, shiftkey.KindUser, e.Name)
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

// Access keys.
