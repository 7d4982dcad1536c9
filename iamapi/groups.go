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
	e, err := s.newEntity(p, shiftkey.KindGroup, "AGPA")
	if err != nil {
		return nil, err
	}
	if err := s.createEntity(ctx, c, "CreateGroup", e, nil); err != nil {
		return nil, err
	}
	return struct{ Group groupXML }{toGroupXML(e)}, nil
}

func (s *Service) getGroup(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	g, err := s.owned(ctx, c, p, shiftkey.KindGroup, "GetGroup")
	if err != nil {
		return nil, err
	}
	members, err := s.Store.GroupMembers(ctx, g.Name)
	if err != nil {
		return nil, err
	}
	// Paged by MaxItems and Marker as AWS's: aws-sdk-go-v2's and
	// Terraform's GetGroup paginators ask for pages.
	members, pg, err := page(p, members, func(m string) string { return m })
	if err != nil {
		return nil, err
	}
	res := struct {
		Group groupXML
		Users []userXML `xml:"Users>member"`
		pageXML
	}{Group: toGroupXML(g), Users: []userXML{}, pageXML: pg}
	for _, m := range members {
		u, err := s.Store.Entity(ctx, shiftkey.KindUser, m)
		if err != nil {
			continue
		}
		res.Users = append(res.Users, untaggedUserXML(u))
	}
	return res, nil
}

func (s *Service) deleteGroup(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	g, err := s.owned(ctx, c, p, shiftkey.KindGroup, "DeleteGroup")
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
	return nil, s.deleteEntity(ctx, g, false, "")
}

func (s *Service) membership(ctx context.Context, c *shiftkey.Caller, p params, action string) (*shiftkey.Entity, *shiftkey.Entity, error) {
	gname, err := p.owner(shiftkey.KindGroup)
	if err != nil {
		return nil, nil, err
	}
	uname, err := p.owner(shiftkey.KindUser)
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
	u, err := s.owned(ctx, c, p, shiftkey.KindUser, "ListGroupsForUser")
	if err != nil {
		return nil, err
	}
	groups, err := s.Store.GroupsForUser(ctx, u.Name)
	if err != nil {
		return nil, err
	}
	groups, pg, err := page(p, groups, entityName)
	if err != nil {
		return nil, err
	}
	return struct {
		Groups []groupXML `xml:"Groups>member"`
		pageXML
	}{each(groups, toGroupXML), pg}, nil
}
