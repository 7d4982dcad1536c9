package iamapi

import (
	"context"
	"net/url"
	"strconv"

	"github.com/shiftkey/shiftkey"
	"github.com/shiftkey/shiftkey/iam"
)

// Roles.

type roleXML struct {
	Path                     string
	RoleName                 string
	RoleId                   string
	Arn                      string
	CreateDate               string
	AssumeRolePolicyDocument string
	Description              string `xml:",omitempty"`
	MaxSessionDuration       int
	Tags                     []tagXML `xml:"Tags>member,omitempty"`
}

// encodeDocument is how IAM returns policy documents: URL-encoded.
func encodeDocument(doc string) string { return url.QueryEscape(doc) }

func toRoleXML(e *shiftkey.Entity, tags []shiftkey.Tag) roleXML {
	return roleXML{e.Path, e.Name, e.ID, e.ARN, isoTime(e.CreatedAt), encodeDocument(e.AssumeRolePolicy), e.Description, e.MaxSessionDuration, tagsXML(tags)}
}

func (s *Service) createRole(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	name, err := p.name("RoleName", 64, true)
	if err != nil {
		return nil, err
	}
	path, err := p.path("Path")
	if err != nil {
		return nil, err
	}
	trust, err := p.required("AssumeRolePolicyDocument")
	if err != nil {
		return nil, err
	}
	if iam.Size(trust) > trustPolicyLimit {
		return nil, shiftkey.Errorf(CodeLimitExceeded, "Cannot exceed quota for ACLSizePerRole: %d", trustPolicyLimit)
	}
	if _, err := ParseTrustPolicy(trust); err != nil {
		return nil, err
	}
	desc, _ := p.opt("Description")
	if len(desc) > 1000 {
		return nil, shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 1000")
	}
	maxSession := 3600
	if v, ok := p.opt("MaxSessionDuration"); ok {
		maxSession, err = strconv.Atoi(v)
		if err != nil || maxSession < 3600 || maxSession > 43200 {
			return nil, shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value '%s' at 'maxSessionDuration' failed to satisfy constraint: Member must have value between 3600 and 43200", v)
		}
	}
	tags, err := p.tags()
	if err != nil {
		return nil, err
	}
	e := &shiftkey.Entity{Kind: shiftkey.KindRole, Name: name, ID: shiftkey.NewID("AROA"), Path: path, ARN: s.arn(shiftkey.KindRole, path, name),
		CreatedAt: s.now(), AssumeRolePolicy: trust, Description: desc, MaxSessionDuration: maxSession}
	if err := s.authorizeWith(ctx, c, "CreateRole", e.ARN, requestTagKeys(tags, nil)); err != nil {
		return nil, err
	}
	if err := s.Store.CreateEntity(ctx, e); err != nil {
		return nil, err
	}
	if len(tags) > 0 {
		if err := s.Store.TagEntity(ctx, shiftkey.KindRole, name, tags); err != nil {
			return nil, err
		}
	}
	return struct{ Role roleXML }{toRoleXML(e, tags)}, nil
}

func (s *Service) getRole(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	name, err := p.name("RoleName", 64, true)
	if err != nil {
		return nil, err
	}
	r, err := s.entity(ctx, c, "GetRole", shiftkey.KindRole, name)
	if err != nil {
		return nil, err
	}
	tags, err := s.Store.Tags(ctx, shiftkey.KindRole, r.Name)
	if err != nil {
		return nil, err
	}
	return struct{ Role roleXML }{toRoleXML(r, tags)}, nil
}

func (s *Service) listRoles(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	prefix, err := p.pathPrefix()
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, c, "ListRoles", s.arn(shiftkey.KindRole, "/", "*")); err != nil {
		return nil, err
	}
	all, err := s.Store.Entities(ctx, shiftkey.KindRole, prefix)
	if err != nil {
		return nil, err
	}
	start, end, next, err := p.page(len(all))
	if err != nil {
		return nil, err
	}
	res := struct {
		Roles       []roleXML `xml:"Roles>member"`
		IsTruncated bool
		Marker      string `xml:",omitempty"`
	}{Roles: []roleXML{}, IsTruncated: next != "", Marker: next}
	for _, e := range all[start:end] {
		res.Roles = append(res.Roles, toRoleXML(e, nil))
	}
	return res, nil
}

func (s *Service) deleteRole(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	name, err := p.name("RoleName", 64, true)
	if err != nil {
		return nil, err
	}
	r, err := s.entity(ctx, c, "DeleteRole", shiftkey.KindRole, name)
	if err != nil {
		return nil, err
	}
	if err := s.checkNoPolicies(ctx, r); err != nil {
		return nil, err
	}
	return nil, s.Store.DeleteEntity(ctx, shiftkey.KindRole, r.Name)
}

// Inline policies.

// IAM's policy size quotas, in non-white-space characters (iam.Size): the
// inline limit is the aggregate of all inline policies of one entity.
