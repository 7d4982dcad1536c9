package iamapi

import (
	"context"
	"net/url"
	"strconv"
	"strings"

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
	PermissionsBoundary      *boundaryXML `xml:",omitempty"` // not in ListRoles, as in IAM
	Tags                     []tagXML     `xml:"Tags>member,omitempty"`
}

// encodeDocument is how IAM returns policy documents: URL-encoded as RFC
// 3986 says, a space as %20. botocore (the AWS CLI, boto3) decodes them with
// unquote, which leaves a form's '+' in place: the JSON then does not parse
// and the caller gets the encoded string instead of the document.
func encodeDocument(doc string) string {
	return strings.ReplaceAll(url.QueryEscape(doc), "+", "%20") // a '+' in doc is %2B by now
}

// toRoleXML is role e as IAM shows it, its trust policy as
// ShownTrustPolicy shows it.
func (s *Service) toRoleXML(ctx context.Context, e *shiftkey.Entity, tags []shiftkey.Tag) (roleXML, error) {
	doc, err := ShownTrustPolicy(ctx, s.Store, e)
	if err != nil {
		return roleXML{}, err
	}
	return roleXMLWith(e, doc, tags), nil
}

// roleXMLWith is role e with trust policy doc.
func roleXMLWith(e *shiftkey.Entity, doc string, tags []shiftkey.Tag) roleXML {
	return roleXML{e.Path, e.Name, e.ID, e.ARN, isoTime(e.CreatedAt), encodeDocument(doc), e.Description, e.MaxSessionDuration,
		toBoundaryXML(e), tagsXML(tags)}
}

// document reads a required policy document of at most limit
// characters (iam.Size), over which IAM names quota.
func (p params) document(param string, limit int, quota string) (string, error) {
	doc, err := p.policyDocument(param)
	if err != nil {
		return "", err
	}
	if iam.Size(doc) > limit {
		return "", shiftkey.Errorf(CodeLimitExceeded, "Cannot exceed quota for %s: %d", quota, limit)
	}
	return doc, nil
}

func (s *Service) createRole(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	e, err := s.newEntity(p, shiftkey.KindRole, "AROA")
	if err != nil {
		return nil, err
	}
	if e.AssumeRolePolicy, err = p.document("AssumeRolePolicyDocument", TrustPolicyLimit, "ACLSizePerRole"); err != nil {
		return nil, err
	}
	trust, err := ParseTrustPolicy(e.AssumeRolePolicy)
	if err != nil {
		return nil, err
	}
	if e.TrustPrincipalIDs, err = BindTrustPrincipals(ctx, s.Store, trust, e); err != nil {
		return nil, err
	}
	if e.Description, err = p.description(true); err != nil {
		return nil, err
	}
	e.MaxSessionDuration = 3600
	if v, ok := p.opt("MaxSessionDuration"); ok {
		if e.MaxSessionDuration, err = p.maxSessionDuration(v); err != nil {
			return nil, err
		}
	}
	tags, err := p.tags()
	if err != nil {
		return nil, err
	}
	if err := s.createEntity(ctx, c, "CreateRole", e, tags); err != nil {
		return nil, err
	}
	// As written: its principals were bound to the ARNs it names just now,
	// so ShownTrustPolicy would read each back to show it unchanged (and
	// could fail, for a role that was created).
	return struct{ Role roleXML }{roleXMLWith(e, e.AssumeRolePolicy, tags)}, nil
}

// maxSessionDuration checks a role's MaxSessionDuration v, in seconds.
func (params) maxSessionDuration(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 3600 || n > 43200 {
		return 0, shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value '%s' at 'maxSessionDuration' failed to satisfy constraint: Member must have value between 3600 and 43200", v)
	}
	return n, nil
}

func (s *Service) getRole(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	r, err := s.owned(ctx, c, p, shiftkey.KindRole, "GetRole")
	if err != nil {
		return nil, err
	}
	tags, err := s.Store.Tags(ctx, r.Kind, r.Name)
	if err != nil {
		return nil, err
	}
	x, err := s.toRoleXML(ctx, r, tags)
	return struct{ Role roleXML }{x}, err
}

func (s *Service) listRoles(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	roles, pg, err := s.listEntities(ctx, c, p, shiftkey.KindRole, "ListRoles")
	if err != nil {
		return nil, err
	}
	xs := make([]roleXML, 0, len(roles))
	for _, e := range roles {
		x, err := s.toRoleXML(ctx, e, nil)
		if err != nil {
			return nil, err
		}
		x.PermissionsBoundary = nil
		xs = append(xs, x)
	}
	return struct {
		Roles []roleXML `xml:"Roles>member"`
		pageXML
	}{xs, pg}, nil
}

func (s *Service) deleteRole(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	r, err := s.owned(ctx, c, p, shiftkey.KindRole, "DeleteRole")
	if err != nil {
		return nil, err
	}
	return nil, s.deleteEntity(ctx, r, false, "")
}

// updateAssumeRolePolicy replaces a role's trust policy, validated and
// bound to the principals it names as CreateRole's is. The role keeps its
// id, policies, tags and sessions; the next AssumeRole is decided by the
// new policy (the store's write drops what caches held of the role).
func (s *Service) updateAssumeRolePolicy(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	name, err := p.newOwner(shiftkey.KindRole)
	if err != nil {
		return nil, err
	}
	doc, err := p.document("PolicyDocument", TrustPolicyLimit, "ACLSizePerRole")
	if err != nil {
		return nil, err
	}
	r, err := s.entity(ctx, c, "UpdateAssumeRolePolicy", shiftkey.KindRole, name)
	if err != nil {
		return nil, err
	}
	trust, err := ParseTrustPolicy(doc)
	if err != nil {
		return nil, err
	}
	updated := *r
	updated.AssumeRolePolicy = doc
	if updated.TrustPrincipalIDs, err = BindTrustPrincipals(ctx, s.Store, trust, &updated); err != nil {
		return nil, err
	}
	return nil, s.Store.UpdateRole(ctx, &updated, shiftkey.RoleTrust)
}

// updateRole is UpdateRole: a new Description and/or MaxSessionDuration,
// each left as it is when absent (Terraform's aws_iam_role sends it for
// max_session_duration).
func (s *Service) updateRole(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	name, err := p.newOwner(shiftkey.KindRole)
	if err != nil {
		return nil, err
	}
	desc, setDesc := p.opt("Description")
	if setDesc {
		if desc, err = p.description(true); err != nil {
			return nil, err
		}
	}
	maxSession, setMax := 0, false
	if v, ok := p.opt("MaxSessionDuration"); ok {
		if maxSession, err = p.maxSessionDuration(v); err != nil {
			return nil, err
		}
		setMax = true
	}
	r, err := s.entity(ctx, c, "UpdateRole", shiftkey.KindRole, name)
	if err != nil {
		return nil, err
	}
	updated, fields := *r, shiftkey.RoleFields(0)
	if setDesc {
		updated.Description, fields = desc, fields|shiftkey.RoleDescription
	}
	if setMax {
		updated.MaxSessionDuration, fields = maxSession, fields|shiftkey.RoleMaxSession
	}
	return nil, s.Store.UpdateRole(ctx, &updated, fields)
}

// updateRoleDescription is UpdateRoleDescription, which Terraform's
// aws_iam_role sends for description: Description is required (it may be
// empty, which clears it) and the answer is the role.
func (s *Service) updateRoleDescription(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	name, err := p.newOwner(shiftkey.KindRole)
	if err != nil {
		return nil, err
	}
	if _, ok := p.opt("Description"); !ok {
		return nil, shiftkey.Errorf(CodeValidationError, "1 validation error detected: Value null at 'description' failed to satisfy constraint: Member must not be null")
	}
	desc, err := p.description(true)
	if err != nil {
		return nil, err
	}
	r, err := s.entity(ctx, c, "UpdateRoleDescription", shiftkey.KindRole, name)
	if err != nil {
		return nil, err
	}
	updated := *r
	updated.Description = desc
	if err := s.Store.UpdateRole(ctx, &updated, shiftkey.RoleDescription); err != nil {
		return nil, err
	}
	// Read again: the answer is the role as it is now, other calls'
	// changes to its other settings included.
	now, err := s.Store.Entity(ctx, shiftkey.KindRole, r.Name)
	if err != nil {
		return nil, err
	}
	tags, err := s.Store.Tags(ctx, now.Kind, now.Name)
	if err != nil {
		return nil, err
	}
	x, err := s.toRoleXML(ctx, now, tags)
	return struct{ Role roleXML }{x}, err
}

// listInstanceProfilesForRole is ListInstanceProfilesForRole. shiftkey
// has no instance profiles, so an existing role is in none; Terraform's
// aws_iam_role calls it before DeleteRole to leave them.
func (s *Service) listInstanceProfilesForRole(ctx context.Context, c *shiftkey.Caller, p params) (any, error) {
	if _, err := p.newOwner(shiftkey.KindRole); err != nil {
		return nil, err
	}
	if _, _, err := page(p, []string(nil), nil); err != nil { // MaxItems and Marker, checked as everywhere
		return nil, err
	}
	if _, err := s.owned(ctx, c, p, shiftkey.KindRole, "ListInstanceProfilesForRole"); err != nil {
		return nil, err
	}
	return struct {
		InstanceProfiles []struct{} `xml:"InstanceProfiles>member"`
		pageXML
	}{}, nil
}
