package iamapi

import (
	"context"

	"github.com/shiftkey/shiftkey"
)

// Groups.

type groupXML struct {
	Path       string
	GroupName  string
	GroupId    string
	Arn        string
	CreateDate string
}

func toGroupXML(e *shiftkey.Entity) groupXML {
	return groupXML{e.Path, e.Name, e.ID, e.ARN, isoTime(e.CreatedAt)}
}

func (s *Service) createGroup(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	name, err := p.name("GroupName", 128, true)
	if err != nil {
		return nil, err
	}
	path, err := p.path("Path")
	if err != nil {
		return nil, err
	}
	e := &shiftkey.Entity{Kind: shiftkey.KindGroup, Name: name, ID: shiftkey.NewID("AGPA"), Path: path, ARN: s.arn(shiftkey.KindGroup, path, name), CreatedAt: s.now()}
	if err := s.authorize(ctx, c, "CreateGroup", e.ARN); err != nil {
		return nil, err
	}
	if err := s.Store.CreateEntity(ctx, e); err != nil {
		return nil, err
	}
	return struct{ Group groupXML }{toGroupXML(e)}, nil
}

func (s *Service) getGroup(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	name, err := p.name("GroupName", 128, true)
	if err != nil {
		return nil, err
	}
	g, err := s.entity(ctx, c, "GetGroup", shiftkey.KindGroup, name)
	if err != nil {
		return nil, err
	}
	members, err := s.Store.GroupMembers(ctx, g.Name)
	if err != nil {
		return nil, err
	}
	res := struct {
		Group       groupXML
		Users       []userXML `xml:"Users>member"`
		IsTruncated bool
	}{Group: toGroupXML(g), Users: []userXML{}}
	for _, m := range members {
		u, err := s.Store.Entity(ctx, shiftkey.KindUser, m)
		if err != nil {
			continue
		}
		res.Users = append(res.Users, toUserXML(u, nil))
	}
	return res, nil
}

func (s *Service) deleteGroup(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	name, err := p.name("GroupName", 128, true)
	if err != nil {
		return nil, err
	}
	g, err := s.entity(ctx, c, "DeleteGroup", shiftkey.KindGroup, name)
	if err != nil {
		return nil, err
	}
	members, err := s.Store.GroupMembers(ctx, g.Name)
	if err != nil {
		return nil, err
	}
	if len(members) > 0 {
		return nil, shiftkey.Errorf(CodeDeleteConflict, "Cannot delete entity, must remove users from group first.")
	}
	if err := s.checkNoPolicies(ctx, g); err != nil {
		return nil, err
	}
	return nil, s.Store.DeleteEntity(ctx, shiftkey.KindGroup, g.Name)
}

func (s *Service) membership(ctx context.Context, c *shiftkey.Caller, p params, action string) (*shiftkey.Entity, *shiftkey.Entity, error) {
	gname, err := p.name("GroupName", 128, true)
	if err != nil {
		return nil, nil, err
	}
	uname, err := p.name("UserName", 64, true)
	if err != nil {
		return nil, nil, err
	}
	g, err := s.entity(ctx, c, action, shiftkey.KindGroup, gname)
	if err != nil {
		return nil, nil, err
	}
	u, err := s.Store.Entity(ctx, shiftkey.KindUser, uname)
	if err != nil {
		return nil, nil, err
	}
	return g, u, nil
}

func (s *Service) addUserToGroup(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	g, u, err := s.membership(ctx, c, p, "AddUserToGroup")
	if err != nil {
		return nil, err
	}
	return nil, s.Store.AddUserToGroup(ctx, g.Name, u.Name)
}

func (s *Service) removeUserFromGroup(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	g, u, err := s.membership(ctx, c, p, "RemoveUserFromGroup")
	if err != nil {
		return nil, err
	}
	return nil, s.Store.RemoveUserFromGroup(ctx, g.Name, u.Name)
}

func (s *Service) listGroupsForUser(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	name, err := p.name("UserName", 64, true)
	if err != nil {
		return nil, err
	}
	u, err := s.entity(ctx, c, "ListGroupsForUser", shiftkey.KindUser, name)
	if err != nil {
		return nil, err
	}
	groups, err := s.Store.GroupsForUser(ctx, u.Name)
	if err != nil {
		return nil, err
	}
	start, end, next, err := p.page(len(groups))
	if err != nil {
		return nil, err
	}
	res := struct {
		Groups      []groupXML `xml:"Groups>member"`
		IsTruncated bool
		Marker      string `xml:",omitempty"`
	}{Groups: []groupXML{}, IsTruncated: next != "", Marker: next}
	for _, g := range groups[start:end] {
		res.Groups = append(res.Groups, toGroupXML(g))
	}
	return res, nil
}
